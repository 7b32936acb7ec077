"""Helpers for the sweep tests. The small sweep they share: 2 x 2 parameter cells x 3 seeds
of the boltzmann scenario on virtual time, at 20 agents for 120 world seconds, so a run
takes well under a second."""

from __future__ import annotations

import csv
from pathlib import Path

from engine.sweep.tables import TIMING

SMALL_SWEEP = """\
name = "small"
duration = 120.0
virtual_time = true
seeds = 3

[base]
scenario = "boltzmann"
agents = 20

[parameters]
"agents.boltzmann.scrip" = [1, 3]
"agents.boltzmann.params.think_cost" = [0.5, 1.0]
"""


def table(out: Path, name: str = "runs.csv") -> list[dict[str, str]]:
    """A table as written, less the timing columns (how a run went on this machine)."""
    with (out / name).open(newline="", encoding="utf-8") as f:
        return [{k: v for k, v in row.items() if k not in TIMING} for row in csv.DictReader(f)]


def tables(out: Path) -> dict[str, list[dict[str, str]]]:
    return {name: table(out, name) for name in ("runs.csv", "windows.csv", "summary.csv")}
