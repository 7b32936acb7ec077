"""One run of a sweep, in whatever process runs it: the headless runner's world, its report,
and the run's outcome. Importable by pool workers and Ray workers alike (no Ray here).

A run's own failure never escapes as an exception: a broken invariant, an error or the
time limit becomes the outcome's status and reason, so the sweep goes on.
"""

from __future__ import annotations

import io
import time
import traceback
from typing import Any

import anyio
from rich.console import Console

from ..headless import run_headless
from .spec import Run

STATUSES = ("ok", "failed", "error", "timeout", "died")


def run_one(run: Run) -> dict[str, Any]:
    """Run one world headless and return its record: the report with a `sweep` section."""
    started = time.monotonic()
    report: dict[str, Any] | None = None
    tb = ""
    try:
        report = anyio.run(_run, run)
        status, reason = classify(report)
    except TimeoutError:
        status, reason = "timeout", f"the time limit of {run.time_limit:g} s of wall time ran out"
    except Exception as e:  # the run's failure, reported as its row; the sweep goes on
        status, reason = "error", f"{type(e).__name__}: {e}"
        tb = traceback.format_exc(limit=-8)
    return record(run, status, reason, time.monotonic() - started, report, tb)


async def _run(run: Run) -> dict[str, Any]:
    # The runner's live summary goes nowhere: many runs share one terminal, the sweep's
    # progress bar speaks for them. The limit is on wall time, checked at every await.
    quiet = Console(file=io.StringIO(), width=120)
    with anyio.fail_after(run.time_limit):
        _, report = await run_headless(run.config, run.duration, console=quiet)
    return report


def classify(report: dict[str, Any]) -> tuple[str, str]:
    broken = [name for name, ok in report["invariants"].items() if not ok]
    if broken:
        return "failed", "invariants broken: " + ", ".join(broken)
    return "ok", ""


def record(run: Run, status: str, reason: str, wall_s: float, report: dict[str, Any] | None = None,
           traceback_text: str = "", attempts: int = 1) -> dict[str, Any]:
    """A run's record as stored in DIR/runs/<key>.json: the report (when there is one) and
    a `sweep` section saying which run it was and how it went."""
    out: dict[str, Any] = dict(report) if report else {}
    out["sweep"] = {
        "key": run.key,
        "cell": run.cell,
        "params": run.params,
        "seed": run.seed,
        "duration": run.duration,
        "status": status,
        "reason": reason,
        "wall_s": round(wall_s, 3),
        "attempts": attempts,
        "config": run.config.model_dump(mode="json"),
    }
    if traceback_text:
        out["sweep"]["traceback"] = traceback_text
    return out
