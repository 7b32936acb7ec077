"""Exporting a journal for analysis (pandas or similar): events and metrics windows as
JSON lines or CSV. Windows come from the journalled `window_closed` events, so every window
of the run is there, however few the world keeps in memory.

The journal is only read (opened read-only, without the writer's lock), so a world being
recorded can be exported while it runs; the output paths are checked before it is read.

`export_state_at` writes the world as of one moment (`--at`): the report the world would
give then (agents, totals, books, rights, invariants) and its full checkpoint state, from
the journal's checkpoints (engine/fork.py's `world_at`)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from .journal import iter_events, read_state
from .paths import check_output


def export_journal(path: str | Path, fmt: str = "jsonl", out: str | None = None) -> list[Path]:
    """Write PREFIX.events.{jsonl,csv} and PREFIX.windows.{jsonl,csv}; return their paths."""
    read_state(path)  # refuses what is not a journal, untouched
    prefix = Path(out) if out else Path(path).with_suffix("")
    windows: list[dict] = []
    written = []
    events_path = check_output(prefix.with_name(prefix.name + f".events.{fmt}"), "export")
    windows_path = check_output(prefix.with_name(prefix.name + f".windows.{fmt}"), "export")
    if fmt == "jsonl":
        with events_path.open("w", encoding="utf-8") as f:
            for ev in iter_events(path):
                f.write(json.dumps(ev, default=str) + "\n")
                if ev["kind"] == "window_closed":
                    windows.append(ev["window"])
        with windows_path.open("w", encoding="utf-8") as f:
            for w in windows:
                f.write(json.dumps(w) + "\n")
    else:
        # One table of every event: the columns are the union of all kinds' fields, so a
        # dataframe can filter by `kind`; nested values are JSON text.
        events = list(iter_events(path))
        windows = [ev["window"] for ev in events if ev["kind"] == "window_closed"]
        columns = ["seq", "t", "kind"]
        for ev in events:
            columns += [k for k in ev if k not in columns]
        with events_path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, columns)
            writer.writeheader()
            for ev in events:
                writer.writerow({k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in ev.items()})
        with windows_path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, list(windows[0]) if windows else ["index"])
            writer.writeheader()
            writer.writerows(windows)
    written += [events_path, windows_path]
    return written


def export_state_at(path: str | Path, at: float, out: str | None = None) -> Path:
    """Write PREFIX.at-SECONDS.json: the world as of world time `at`; return its path."""
    from .checkpoint import capture
    from .fork import world_at
    from .report import build_report

    prefix = Path(out) if out else Path(path).with_suffix("")
    target = check_output(prefix.with_name(f"{prefix.name}.at-{at:g}.json"), "export")
    world, info, exact = world_at(path, at)
    doc = {"t": world.clock.now() if exact else info.t, "asked": at, "exact": exact,
           "checkpoint": {"n": info.n, "t": info.t, "reason": info.reason},
           "report": build_report(world), "state": capture(world)}
    target.write_text(json.dumps(doc, indent=1, default=str) + "\n", encoding="utf-8")
    return target
