"""A recorded world opened for replay: the world and its events as of any moment.

Read-only: the journal is opened with read-only connections and no lock, so a journal
still being written can be replayed (`refresh()` sees its newest commits: SQLite's WAL
gives each read the file as of a commit), and so can one cut short by kill -9, up to its
last commit.

`world_at(t)` is the world at `t` as `engine.fork.world_at` builds it (a checkpoint, run
on to `t` on a virtual-time recording), with two savings for a replay that moves step by
step: a world already at an earlier moment of the same stretch between checkpoints is run
on rather than rebuilt, and random streams' positions are memoised across restores.
`events_before(t)` gives the last events at or before `t` (found through the commits
table, which says when each batch of events was committed, without reading the others).

A world is built with the cyclic collector paused (`collector_paused`): a restore makes
about 10^5 long-lived objects at once, and the collector, counting allocations, ran full
collections over the whole heap (and the worlds a replay left behind) in the middle of it,
up to half a seek's time. The world a seek leaves behind is collected afterwards: the app
collects once the new moment is on screen (tui/replay.py).
"""

from __future__ import annotations

import bisect
import io
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .agent import remember_history
from .checkpoint import CheckpointError, collector_paused
from .checkpoint import restore as restore_checkpoint
from .events import EVENT_KINDS, Event
from .fork import advance, pick_checkpoint, recording_bounds
from .journal_file import JournalError, inspect, writer_of
from .journal_read import CheckpointInfo, PlainUnpickler, iter_events, read_checkpoint, reader
from .resume import load_config

if TYPE_CHECKING:
    from .world import World

__all__ = ["Moment", "Recording"]

# Notable events a timeline marks (besides checkpoints and operator actions).
MARKED = ("oracle_resolved", "loan")
EVENTS_BACK = 2000  # events read back to find the one before a position


@dataclass
class Moment:
    """What a replay shows at a position: the world, where it came from, and whether it is
    the recorded world exactly (False: a real-time recording between checkpoints, shown
    as of the checkpoint before)."""

    t: float
    world: World
    checkpoint: CheckpointInfo
    exact: bool


class Recording:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.meta = inspect(self.path).meta
        self.config = load_config(self.path, self.meta)
        self.virtual = self.meta.get("clock") == "virtual"
        self.parent = self.meta.get("parent")
        self._memo: dict = {}
        self._world: World | None = None  # the last world built, and the checkpoint it grew from
        self._from: CheckpointInfo | None = None
        self._batches: list[tuple[float, int]] = []  # (commit time, first seq) of each event batch
        # Agents keep their recent actions and freezes (the app's history, `remember_history`)
        # from the checkpoint a moment is built from: the same history however the moment
        # was reached (run on from an earlier moment of the stretch, or built afresh).
        self.history = False
        self.refresh()

    def refresh(self) -> None:
        """See what the journal holds now (it may still be being written)."""
        self.checkpoints, self.end = recording_bounds(self.path)
        self._times = [c.t for c in self.checkpoints]
        db = reader(self.path)
        try:
            commits = db.execute("SELECT t FROM commits WHERE events > 0 ORDER BY n").fetchall()
            firsts = db.execute("SELECT first_seq FROM event_batches ORDER BY first_seq").fetchall()
        except sqlite3.Error as e:
            raise JournalError(f"{self.path}: not a readable journal: {e}") from None
        finally:
            db.close()
        # The k-th commit that wrote events wrote the k-th batch (one batch per commit).
        self._batches = [(float(t), int(f)) for (t,), (f,) in zip(commits, firsts)]

    @property
    def start(self) -> float:
        return self.checkpoints[0].t

    # -- the world --------------------------------------------------------------------------------
    async def moment(self, t: float) -> Moment:
        """The world at `t` (clamped to the recording)."""
        with collector_paused():
            return await self._moment(t)

    async def _moment(self, t: float) -> Moment:
        t = min(max(t, self.start), self.end)
        info = pick_checkpoint(self.checkpoints, t)
        world = self._world
        reuse = (self.virtual and world is not None and self._from == info and not world.running
                 and world.clock.now() <= t)
        if not reuse:
            state = read_checkpoint(self.path, info.n)
            try:
                world = restore_checkpoint(self.config, state, virtual=True, memo=self._memo)
            except CheckpointError as e:
                raise JournalError(f"{self.path}: checkpoint {info.n}: {e}") from None
            if self.history:
                remember_history(world)
        assert world is not None  # (reused only when there is one)
        exact = self.virtual or t == info.t
        if self.virtual and t > world.clock.now():
            await advance(world, t)
        self._world, self._from = world, info
        return Moment(world.clock.now() if exact else info.t, world, info, exact)

    def checkpoint_index(self, t: float) -> int:
        """The index of the last checkpoint at or before `t`."""
        return max(0, bisect.bisect_right(self._times, t) - 1)

    def restore_checkpoint(self, i: int) -> World:
        """The world of checkpoint `i` (an index into `checkpoints`), not run on."""
        info = self.checkpoints[i]
        try:
            return restore_checkpoint(self.config, read_checkpoint(self.path, info.n), virtual=True, memo=self._memo)
        except CheckpointError as e:
            raise JournalError(f"{self.path}: checkpoint {info.n}: {e}") from None

    def is_live(self) -> bool:
        """Is a process writing the journal now?"""
        return writer_of(self.path) is not None

    # -- events -----------------------------------------------------------------------------------
    def next_event(self, seq: int, t: float) -> dict[str, Any] | None:
        """The first event after event `seq` (which happened at `t` or before)."""
        for row in iter_events(self.path, after=seq):
            return row
        return None

    def previous_event(self, seq: int, t: float) -> dict[str, Any] | None:
        """The last event before event `seq` (at `t` or before)."""
        rows = [r for r in self.events_before(t, EVENTS_BACK) if r["seq"] < seq]
        return rows[-1] if rows else None

    def events_before(self, t: float, limit: int = 200) -> list[dict[str, Any]]:
        """The last `limit` events with a time at or before `t`, oldest first."""
        i = bisect.bisect_left(self._batches, (t, float("inf")))  # batches committed before t, and the next
        out: list[dict[str, Any]] = []
        db = reader(self.path)
        try:
            names = {k: json.loads(f) for k, f in db.execute("SELECT kind, fields FROM event_kinds")}
            j = min(i, len(self._batches) - 1)
            while j >= 0 and len(out) < limit:
                row = db.execute("SELECT data FROM event_batches WHERE first_seq = ?",
                                 (self._batches[j][1],)).fetchone()
                if row is not None:
                    batch = [e for e in _decode(row[0], names) if e["t"] <= t]
                    out[:0] = batch
                j -= 1
        except sqlite3.Error as e:
            raise JournalError(f"{self.path}: not a readable journal: {e}") from None
        finally:
            db.close()
        return out[-limit:]

    def markers(self) -> dict[str, list[float]]:
        """Times worth a mark on a timeline: checkpoints, operator actions, resolutions,
        defaults. Reads every event once (call it off the UI's loop on a long recording)."""
        marks: dict[str, list[float]] = {"checkpoint": [c.t for c in self.checkpoints],
                                         "operator": [c.t for c in self.checkpoints if c.reason == "operator"],
                                         "resolution": [], "default": []}
        db = reader(self.path)
        try:
            names = {k: json.loads(f) for k, f in db.execute("SELECT kind, fields FROM event_kinds")}
            for (data,) in db.execute("SELECT data FROM event_batches ORDER BY first_seq"):
                for ev in _decode(data, names, MARKED):
                    if ev["kind"] == "oracle_resolved":
                        marks["resolution"].append(ev["t"])
                    elif ev.get("what") == "defaulted":
                        marks["default"].append(ev["t"])
        finally:
            db.close()
        return marks


def _decode(data: bytes, names: dict[str, list[str]], kinds: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    seqs, ts, kinds_, values = PlainUnpickler(io.BytesIO(data)).load()
    out, at = [], 0
    for seq, t, kind in zip(seqs, ts, kinds_):
        fields_ = names.get(kind, ())
        if kinds is None or kind in kinds:
            out.append({"seq": seq, "t": t, "kind": kind, **dict(zip(fields_, values[at:at + len(fields_)]))})
        at += len(fields_)
    return out


def as_event(row: dict[str, Any]) -> Event | None:
    """A journalled event as the engine's event object (for the UI's describers)."""
    cls = EVENT_KINDS.get(row["kind"])
    if cls is None:
        return None
    fields_ = {k: v for k, v in row.items() if k not in ("seq", "t", "kind")}
    try:
        ev = cls(row["t"], **fields_)
    except TypeError:
        return None
    ev.seq = row["seq"]
    return ev
