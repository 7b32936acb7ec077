"""Sweeps: many headless worlds over parameters and seeds, on this machine or a Ray cluster,
into one table. An edge of the engine: it uses the headless runner and its reports, and
nothing in the engine imports it (tests/sweep/test_edge.py checks).

    spec      the sweep file (pydantic) and its plan: one Run per parameter cell and seed
    worker    one run, in whichever process runs it
    backends  a local process pool, or Ray (imported only when asked for)
    tables    runs.csv, windows.csv, summary.csv and the closing mean ± std table
    runner    resume, progress, storing each run, the `ecology sweep` command
"""

from .runner import SweepResult, main_sweep, run_sweep
from .spec import Run, Sweep, SweepError, load_sweep

__all__ = ["Run", "Sweep", "SweepError", "SweepResult", "load_sweep", "main_sweep", "run_sweep"]
