"""Running sweeps on the local pool: the tables, resuming a sweep whose process was killed,
the same table for any number of workers, and failing runs as rows with their reason."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import sweep_jobs
from rich.console import Console
from sweeptest import table, tables

from engine.sweep import load_sweep, run_sweep
from engine.sweep.backends import PoolBackend
from engine.sweep.worker import classify, run_one
from tui.cli import main

ROOT = Path(__file__).resolve().parents[2]
QUIET = Console(file=io.StringIO())


def stored(out: Path) -> dict[str, bytes]:
    """The runs stored whole in DIR/runs (temporary files of a write in progress aside)."""
    runs = out / "runs"
    return {p.name: p.read_bytes() for p in runs.glob("*.json")} if runs.exists() else {}


def test_the_tables_hold_every_run_its_windows_and_each_cells_statistics(straight):
    runs = table(straight)
    assert len(runs) == 12
    assert [(r["cell"], r["agents.boltzmann.scrip"], r["agents.boltzmann.params.think_cost"], r["seed"])
            for r in runs] == [(str(c), s, t, str(seed)) for c, (s, t) in
                               enumerate([("1", "0.5"), ("1", "1.0"), ("3", "0.5"), ("3", "1.0")]) for seed in range(3)]
    with (straight / "runs.csv").open(newline="", encoding="utf-8") as f:
        header = next(csv.reader(f))
    assert {"wall_s", "attempts", "status", "reason", "totals.actions", "totals.scrip_gini",
            "totals.events.scrip_transferred", "mechanisms.rescue", "invariants.scrip_conserved"} <= set(header)
    for row in runs:
        report = json.loads((straight / "runs" / f"{row['key']}.json").read_text(encoding="utf-8"))
        assert row["status"] == report["sweep"]["status"] == "ok" and row["reason"] == ""
        assert int(row["totals.actions"]) == report["totals"]["actions"] > 0
        assert int(row["totals.scrip_supply"]) == report["totals"]["initial_scrip"] == 20 * int(row["agents.boltzmann.scrip"])
        assert float(row["totals.scrip_gini"]) == report["totals"]["scrip_gini"]
        assert row["invariants.scrip_conserved"] == "True"
        assert report["seed"] == int(row["seed"]) and report["clock"] == "virtual" and report["duration_s"] == 120.0
    # the seed and the parameters matter: no two runs made the same economy
    assert len({r["totals.actions"] + r["totals.scrip_gini"] for r in runs}) == 12
    windows = table(straight, "windows.csv")
    assert len(windows) == 12 * 2  # 120 s in windows of 60 s
    assert {w["key"] for w in windows} == {r["key"] for r in runs}
    for r in runs:
        mine = [w for w in windows if w["key"] == r["key"]]
        assert sum(int(w["actions"]) for w in mine) == int(r["totals.actions"])
    summary = table(straight, "summary.csv")
    assert [(s["cell"], s["runs"], s["ok"]) for s in summary] == [(str(c), "3", "3") for c in range(4)]
    for s in summary:
        ginis = [float(r["totals.scrip_gini"]) for r in runs if r["cell"] == s["cell"]]
        mean = sum(ginis) / 3
        std = (sum((g - mean) ** 2 for g in ginis) / 2) ** 0.5
        assert abs(float(s["totals.scrip_gini.mean"]) - mean) < 1e-12
        assert abs(float(s["totals.scrip_gini.std"]) - std) < 1e-12
    assert (straight / "sweep.toml").read_text(encoding="utf-8").startswith('name = "small"')


def test_a_sweep_killed_half_way_and_resumed_gives_the_same_table(tmp_path, small_sweep, straight, capsys):
    out = tmp_path / "out"
    # A real `ecology sweep` with one worker, in its own process group (the sweep and its
    # pool worker), killed with SIGKILL once 4 of its 12 runs are stored.
    child = subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "sweep", str(small_sweep), "--out", str(out), "--workers", "1"],
        cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while len(stored(out)) < 4:
        assert child.poll() is None, child.stderr.read().decode()
        assert time.monotonic() < deadline, "the sweep stored no 4 runs in 120 s"
        time.sleep(0.01)
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL
    gone_by = time.monotonic() + 10
    while True:  # the whole group is gone: the pool's worker died with the sweep
        try:
            os.killpg(child.pid, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < gone_by, "a process of the killed sweep lives on"
        time.sleep(0.01)
    before = stored(out)
    assert 4 <= len(before) < 12, len(before)
    assert not (out / "runs.csv").exists()  # it never got to its tables

    # The same command again (two workers this time) goes on where it stopped.
    assert main(["sweep", str(small_sweep), "--out", str(out), "--workers", "2"]) == 0
    assert f"{len(before)} of 12 runs already finished" in capsys.readouterr().err
    after = stored(out)
    assert len(after) == 12
    assert all(after[name] == data for name, data in before.items())  # not run again
    assert tables(out) == tables(straight)


def test_the_same_table_from_one_worker_or_two(tmp_path, small_sweep, straight):
    result = run_sweep(load_sweep(small_sweep), tmp_path / "one", workers=1, console=QUIET)
    assert result.ran == 12 and result.skipped == 0
    assert tables(tmp_path / "one") == tables(straight)
    # wall time is the one thing that may differ, and it was measured
    assert all(float(r["wall_s"]) > 0 for r in csv.DictReader((tmp_path / "one" / "runs.csv").open()))


def test_failing_runs_are_rows_with_their_reason_and_the_sweep_goes_on(tmp_path, small_sweep, straight):
    text = small_sweep.read_text().replace('seeds = 3', 'seeds = 3\nretries = 1')
    small_sweep.write_text(text, encoding="utf-8")
    sweep = load_sweep(small_sweep)
    out = tmp_path / "out"
    # seed 0 runs its world, seed 1's job raises, seed 2 kills its worker on every attempt
    result = run_sweep(sweep, out, backend=PoolBackend(2, job=sweep_jobs.by_seed), console=QUIET)
    rows = table(out)
    assert [r["status"] for r in rows] == ["ok", "error", "died"] * 4
    assert all(r["reason"] == "RuntimeError: this run's job raised" for r in rows[1::3])
    assert all(r["reason"] == "its worker died on each of 2 attempts (last exit code 5)" for r in rows[2::3])
    assert [r["attempts"] for r in csv.DictReader((out / "runs.csv").open())][2::3] == ["2"] * 4
    assert rows[1]["totals.actions"] == ""  # no report: no totals
    assert [s["ok"] for s in table(out, "summary.csv")] == ["1"] * 4
    assert len(result.failed) == 8
    ok_files = {r["key"]: (out / "runs" / f"{r['key']}.json").read_bytes() for r in rows[0::3]}

    # --retry-failed runs the failed ones again (here with the real job), and only them.
    result = run_sweep(sweep, out, retry_failed=True, workers=2, console=QUIET)
    assert (result.skipped, result.ran) == (4, 8)
    assert all((out / "runs" / f"{key}.json").read_bytes() == data for key, data in ok_files.items())
    assert tables(out) == tables(straight)


def test_a_run_over_its_time_limit_is_a_timeout_row_and_the_command_exits_1(tmp_path, small_sweep, capsys):
    small_sweep.write_text(small_sweep.read_text().replace("seeds = 3", "seeds = 3\ntime_limit = 0.001"),
                           encoding="utf-8")
    out = tmp_path / "out"
    assert main(["sweep", str(small_sweep), "--out", str(out), "--workers", "2"]) == 1
    rows = table(out)
    assert len(rows) == 12
    assert {(r["status"], r["reason"]) for r in rows} == {("timeout", "the time limit of 0.001 s of wall time ran out")}
    assert "12 runs, 0 ok, 12 not ok" in capsys.readouterr().err


def test_a_run_is_classified_by_its_invariants():
    assert classify({"invariants": {"a": True, "b": True}}) == ("ok", "")
    assert classify({"invariants": {"a": True, "b": False, "c": False}}) == ("failed", "invariants broken: b, c")


def test_one_run_in_process_is_the_headless_runners_report(small_sweep):
    run = load_sweep(small_sweep).runs[4]
    rec = run_one(run)
    facts = rec["sweep"]
    assert (facts["status"], facts["key"], facts["seed"], facts["cell"]) == ("ok", run.key, 1, 1)
    assert rec["seed"] == 1 and rec["world"] == "boltzmann" and rec["totals"]["agents"] == 20
    assert facts["config"]["agents"][0]["params"] == {"think_cost": 1.0}
