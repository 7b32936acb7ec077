"""Running a sweep: skip the runs already finished in DIR, run the rest on a backend with a
progress bar, store each run's record as it lands, then write the tables and print each
metric's mean ± std per parameter cell.

Each finished run is one file, DIR/runs/<key>.json, written whole or not at all (a
temporary file renamed into place). That file is what makes a sweep resumable: a sweep
killed at any moment loses only the runs in flight, and the same command goes on from
there. The tables are always rebuilt from those files, in the sweep's order.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from .backends import Backend, BackendError, PoolBackend, RayBackend
from .spec import Run, Sweep, SweepError, load_sweep
from .tables import DEFAULT_SUMMARY, summary_table, write_tables
from .worker import STATUSES


@dataclass
class SweepResult:
    out: Path
    records: list[dict[str, Any]]
    skipped: int  # runs found finished in DIR and not run again
    ran: int
    tables: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r["sweep"]["status"] != "ok"]


def default_workers() -> int:
    """One worker per core this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def run_path(out: Path, key: str) -> Path:
    return out / "runs" / f"{key}.json"


def load_finished(out: Path, run: Run) -> dict[str, Any] | None:
    """The stored record of this run, if DIR holds a whole one for exactly this run."""
    path = run_path(out, run.key)
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
        facts = rec["sweep"]
        if facts["key"] != run.key or facts["status"] not in STATUSES:
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None  # absent, or not one of ours: run it again
    # The cell's index and the parameters' names come from the sweep as it is now (a cell
    # may have moved if values were added); the outcome comes from the file.
    facts["cell"], facts["params"] = run.cell, run.params
    return rec


def store(out: Path, rec: dict[str, Any]) -> None:
    path = run_path(out, rec["sweep"]["key"])
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(rec, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)  # whole or not at all: a kill mid-write leaves only the temp file


def make_backend(workers: int | None, ray: str | None) -> Backend:
    if ray is not None:
        return RayBackend(ray)
    return PoolBackend(workers or default_workers())


def run_sweep(
    sweep: Sweep,
    out: str | Path,
    workers: int | None = None,
    ray: str | None = None,
    retry_failed: bool = False,
    console: Console | None = None,
    backend: Backend | None = None,
) -> SweepResult:
    """Run every run of `sweep` not already finished in `out`; write the tables there."""
    console = console or Console(stderr=True)
    out = Path(out)
    finished: dict[str, dict[str, Any]] = {}
    for run in sweep.runs:
        rec = load_finished(out, run)
        if rec is not None and not (retry_failed and rec["sweep"]["status"] != "ok"):
            finished[run.key] = rec
    todo = [run for run in sweep.runs if run.key not in finished]
    skipped = len(finished)
    # The backend first: one that cannot start (Ray unreachable) leaves DIR untouched.
    if todo and backend is None:
        backend = make_backend(workers, ray)
    try:
        (out / "runs").mkdir(parents=True, exist_ok=True)
        (out / "sweep.toml").write_text(sweep.text, encoding="utf-8")
        if skipped:
            console.print(f"{skipped} of {len(sweep.runs)} runs already finished in {out}: skipping them")
        if todo:
            assert backend is not None
            _execute(sweep, todo, backend, out, finished, skipped, console)
    finally:
        if backend is not None:
            backend.close()
    records = [finished[run.key] for run in sweep.runs]
    tables = write_tables(out, records, sweep.parameter_names)
    metrics = list(sweep.spec.summary or DEFAULT_SUMMARY)
    console.print(summary_table(tables["summary"], sweep.parameter_names, metrics,
                                title=f"{sweep.spec.name}: mean ± std over each cell's ok runs"))
    result = SweepResult(out=out, records=records, skipped=skipped, ran=len(todo), tables=tables)
    bad = result.failed
    console.print(f"{len(records)} runs, {len(records) - len(bad)} ok, {len(bad)} not ok; tables in "
                  f"{out}/runs.csv, windows.csv, summary.csv")
    return result


def _execute(sweep: Sweep, todo: list[Run], backend: Backend, out: Path, finished: dict[str, dict[str, Any]],
             skipped: int, console: Console) -> None:
    """Run `todo` on the backend with a progress bar, storing each record as it lands."""
    where = f"{backend.workers} local workers" if isinstance(backend, PoolBackend) else backend.name
    console.print(f"running {len(todo)} runs on {where}")
    failures = sum(1 for r in finished.values() if r["sweep"]["status"] != "ok")
    columns = (TextColumn("[b]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("[red]{task.fields[failed]} failed"), TimeElapsedColumn(),
               TextColumn("ETA"), TimeRemainingColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(sweep.spec.name, total=len(sweep.runs), completed=skipped, failed=failures)
        for rec in backend.execute(todo, sweep.spec.retries):
            store(out, rec)
            finished[rec["sweep"]["key"]] = rec
            facts = rec["sweep"]
            if facts["status"] != "ok":
                failures += 1
                progress.console.print(f"[red]{facts['status']}[/red] {_label(facts)}: {facts['reason']}",
                                       highlight=False)
            progress.update(task, advance=1, failed=failures)


def _label(facts: dict[str, Any]) -> str:
    cell = ", ".join(f"{k}={v!r}" for k, v in facts["params"].items())
    return f"{cell + ', ' if cell else ''}seed {facts['seed']}"


def default_out(sweep_path: Path) -> Path:
    """The sweep file's name without .toml, beside it: slots.toml -> slots/."""
    return sweep_path.with_suffix("") if sweep_path.suffix else sweep_path.with_name(sweep_path.name + ".out")


def main_sweep(path: str, out: str | None = None, workers: int | None = None, ray: str | None = None,
               retry_failed: bool = False) -> int:
    """`ecology sweep`: 0 when every run is ok, 1 when one is not, 2 on bad input."""
    console = Console(stderr=True)
    try:
        if workers is not None and ray is not None:
            raise SweepError("--workers sizes the local pool; with --ray the cluster decides")
        if workers is not None and not 1 <= workers <= 1024:
            raise SweepError(f"--workers must be between 1 and 1024, got {workers}")
        sweep = load_sweep(path)
        result = run_sweep(sweep, out or default_out(sweep.path), workers=workers, ray=ray,
                           retry_failed=retry_failed, console=console)
    except (SweepError, BackendError) as e:
        print(f"ecology: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # DIR cannot be made or written
        print(f"ecology: error: cannot write the sweep's results: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished runs are kept; run the same command again to go on", file=sys.stderr)
        return 130
    return 1 if result.failed else 0
