"""The sweep is an edge of the engine: it may use the headless runner and the report, and
nothing but the `ecology` command imports it. Ray is imported only when a sweep asks for
it. Checked on the real import graph (grimp, which import-linter is built on) and at run
time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]


def test_nothing_but_the_command_imports_the_sweep():
    graph = grimp.build_graph("engine", "tui", "containers")
    sweep = {"engine.sweep", *graph.find_descendants("engine.sweep")}
    importers = {m for s in sweep for m in graph.find_modules_that_directly_import(s)} - sweep
    assert importers == {"tui.cli"}
    # and what it uses of the engine is the top: the headless runner, reports, the config
    used = {m for s in sweep for m in graph.find_modules_directly_imported_by(s)} - sweep
    assert "engine.headless" in used
    assert used <= {"engine.headless", "engine.report", "engine.export", "engine.config"}


def test_ray_is_imported_only_when_asked_for(small_sweep, tmp_path):
    code = (
        "import sys, io, tui.cli, engine.sweep\n"
        "from rich.console import Console\n"
        "from engine.sweep import load_sweep, run_sweep\n"
        f"s = load_sweep({str(small_sweep)!r})\n"
        "s.runs[:] = s.runs[:2]\n"
        f"run_sweep(s, {str(tmp_path / 'out')!r}, workers=1, console=Console(file=io.StringIO()))\n"
        "print(sorted(m for m in ('ray', 'textual', 'docker') if m in sys.modules))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[]"
