"""A sweep's tables: runs.csv (one row per run), windows.csv (one row per run and metrics
window), summary.csv (each metric's mean and standard deviation per parameter cell), and
the closing table printed to the terminal.

Rows follow the sweep's order (cell by cell, seed by seed), never the order runs finished
in, so the same sweep gives the same tables on any backend and any number of workers. Only
the circumstance columns (`TIMING`) may differ between two runs of the same sweep.
"""

from __future__ import annotations

import csv
import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.table import Table

TIMING = ("wall_s", "attempts")  # how a run went on this machine, not what the world did
RUN_COLUMNS = ("key", "cell")
FACT_COLUMNS = ("seed", "status", "reason", *TIMING)
DEFAULT_SUMMARY = ("totals.scrip_gini", "totals.actions", "totals.minted", "totals.frozen")


def run_row(rec: dict[str, Any], parameters: Sequence[str]) -> dict[str, Any]:
    """A run's record flattened: its parameters, facts, and the report's totals (event
    counts as totals.events.KIND), mechanism counts and invariants, one column each."""
    facts = rec["sweep"]
    row: dict[str, Any] = {"key": facts["key"], "cell": facts["cell"]}
    row.update({name: facts["params"].get(name) for name in parameters})
    row.update({name: facts.get(name) for name in FACT_COLUMNS})
    for name, value in rec.get("totals", {}).items():
        if isinstance(value, dict):
            row.update({f"totals.{name}.{k}": v for k, v in value.items()})
        else:
            row[f"totals.{name}"] = value
    row.update({f"mechanisms.{k}": v for k, v in rec.get("mechanisms", {}).items()})
    row.update({f"invariants.{k}": v for k, v in rec.get("invariants", {}).items()})
    return row


def window_rows(rec: dict[str, Any], parameters: Sequence[str]) -> list[dict[str, Any]]:
    facts = rec["sweep"]
    head = {"key": facts["key"], "cell": facts["cell"], **{n: facts["params"].get(n) for n in parameters},
            "seed": facts["seed"]}
    return [{**head, **window} for window in rec.get("windows", [])]


def columns_of(rows: Sequence[dict[str, Any]], first: Sequence[str]) -> list[str]:
    """The fixed columns, then every other column in the order it first appears; event
    kinds, which differ from run to run, sorted so no run's order decides the header."""
    seen: dict[str, None] = dict.fromkeys(first)
    for row in rows:
        seen.update(dict.fromkeys(row))
    rest = [c for c in seen if c not in first]
    events = sorted(c for c in rest if c.startswith("totals.events."))
    return [*first, *[c for c in rest if not c.startswith("totals.events.")], *events]


def write_csv(path: Path, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, columns, restval="", extrasaction="raise")
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    tmp.replace(path)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def summarize(rows: Sequence[dict[str, Any]], parameters: Sequence[str],
              metrics: Sequence[str]) -> list[dict[str, Any]]:
    """Per parameter cell: how many runs and how many ok, and each metric's mean and
    sample standard deviation over the cell's ok runs (std empty with fewer than two)."""
    cells: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        cells.setdefault(row["cell"], []).append(row)
    out = []
    for cell, members in cells.items():
        ok = [r for r in members if r["status"] == "ok"]
        entry: dict[str, Any] = {"cell": cell, **{p: members[0][p] for p in parameters},
                                 "runs": len(members), "ok": len(ok)}
        for metric in metrics:
            values = [v for v in (_number(r.get(metric)) for r in ok) if v is not None]
            entry[f"{metric}.mean"] = statistics.fmean(values) if values else None
            entry[f"{metric}.std"] = statistics.stdev(values) if len(values) > 1 else None
        out.append(entry)
    return out


def metric_columns(columns: Sequence[str]) -> list[str]:
    return [c for c in columns if c.startswith(("totals.", "mechanisms.", "invariants."))]


def write_tables(out: Path, records: Sequence[dict[str, Any]], parameters: Sequence[str]) -> dict[str, Any]:
    """Write runs.csv, windows.csv and summary.csv into `out`; return the rows written."""
    rows = [run_row(r, parameters) for r in records]
    columns = columns_of(rows, [*RUN_COLUMNS, *parameters, *FACT_COLUMNS])
    write_csv(out / "runs.csv", rows, columns)
    windows = [w for r in records for w in window_rows(r, parameters)]
    write_csv(out / "windows.csv", windows, columns_of(windows, [*RUN_COLUMNS, *parameters, "seed"]))
    metrics = [c for c in metric_columns(columns) if any(_number(r.get(c)) is not None for r in rows)]
    summary = summarize(rows, parameters, metrics)
    write_csv(out / "summary.csv", summary, columns_of(summary, ["cell", *parameters, "runs", "ok"]))
    return {"runs": rows, "columns": columns, "windows": windows, "summary": summary}


def _num(x: float, digits: int) -> str:
    # large counts in full with separators (30,520, not 3.052e+04); the rest to a few digits
    return f"{x:,.0f}" if abs(x) >= 10 ** digits else f"{x:.{digits}g}"


def _pm(mean: float | None, std: float | None) -> str:
    if mean is None:
        return "—"
    return _num(mean, 4) + (f" ± {_num(std, 2)}" if std is not None else "")


def short_names(paths: Sequence[str]) -> dict[str, str]:
    """Each dotted path's shortest tail that no other path shares: oracle.slots -> slots."""
    out = {}
    for path in paths:
        parts = path.split(".")
        for n in range(1, len(parts) + 1):
            tail = ".".join(parts[-n:])
            if not any(other != path and (other == tail or other.endswith("." + tail)) for other in paths):
                break
        out[path] = tail
    return out


def summary_table(summary: Sequence[dict[str, Any]], parameters: Sequence[str], metrics: Sequence[str],
                  title: str) -> Table:
    """Each metric's mean ± std per parameter cell (over the cell's ok runs). Headers are
    the shortest distinct tails of the names; the caption and runs.csv have them whole."""
    names = short_names([*parameters, *metrics])
    table = Table(title=title, title_justify="left", caption_justify="left",
                  caption=", ".join(f"{names[p]} = {p}" for p in [*parameters, *metrics] if names[p] != p) or None)
    for p in parameters:
        table.add_column(names[p], no_wrap=True)
    table.add_column("ok/runs", justify="right", no_wrap=True)
    for m in metrics:
        table.add_column(names[m], justify="right", no_wrap=True)
    for entry in summary:
        table.add_row(
            *(repr(entry[p]) if isinstance(entry[p], str) else str(entry[p]) for p in parameters),
            f"{entry['ok']}/{entry['runs']}",
            *(_pm(entry.get(f"{m}.mean"), entry.get(f"{m}.std")) for m in metrics),
        )
    return table
