"""The layering contract: engine/ never imports textual or docker (or our UI and
sandboxes); containers/ never imports textual. Checked by import-linter on the real
import graph, plus a runtime check that importing the engine loads neither."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_linter_contracts_hold():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert exe, "import-linter is a dev dependency"
    r = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 kept, 0 broken" in r.stdout


def test_headless_run_never_loads_textual_or_docker():
    code = (
        "import sys, tui.cli, engine.world, engine.headless;"
        "print(sorted(m for m in ('textual', 'docker') if m in sys.modules))"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "[]"
