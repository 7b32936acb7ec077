"""Jobs that misbehave, for the backends' tests: they run in real pool and Ray workers in
place of a world run. Module level, so a worker can import (or Ray unpickle) them."""

from __future__ import annotations

import os
import time
from pathlib import Path

from engine.sweep.spec import Run
from engine.sweep.worker import record, run_one


def ok(run: Run) -> dict:
    return record(run, "ok", "", 0.0)


def dies_once(run: Run) -> dict:
    """The first attempt at each run kills its worker; the next one succeeds."""
    mark = Path(run.params["marker"]) / f"{run.key}.tried"
    if not mark.exists():
        mark.write_text(str(os.getpid()))
        os._exit(3)
    return record(run, "ok", f"second worker {os.getpid()}", 0.0)


def always_dies(run: Run) -> dict:
    os._exit(4)


def hangs(run: Run) -> dict:
    time.sleep(3600)  # a worker that stopped answering: only a kill ends it
    return record(run, "ok", "", 0.0)


def raises(run: Run) -> dict:
    raise RuntimeError(f"job broke on {run.key}")


def by_seed(run: Run) -> dict:
    """A real world run for seed 0, an exception for seed 1, a dying worker for seed 2."""
    if run.seed == 1:
        raise RuntimeError("this run's job raised")
    if run.seed == 2:
        os._exit(5)
    return run_one(run)
