"""The journal: a world's durable record in one SQLite file (WAL).

Every event is appended to `events` (the append-only history, for export and analysis);
every commit also writes the rows of the world's state that changed since the last one
(`persist.StateCapture`), in the same transaction, so the file always holds one
consistent state: the world as of its last commit. Commits happen every
`commit_interval` real seconds (100 ms by default) and whenever someone awaits `flush()`
(the UI does, before it confirms an operator's action).

A commit that fails (a full disk, a read-only file) pauses the world with a clear
message instead of going on unrecorded; commits are retried, and the operator resumes.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from dataclasses import fields
from operator import attrgetter

from .events import Event, WorldControl
from .persist import TABLES, StateCapture

if TYPE_CHECKING:
    from .world import World

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- events are written in batches, one row per commit: [[seq, t, kind, field values...], ...]
CREATE TABLE IF NOT EXISTS event_batches (first_seq INTEGER PRIMARY KEY, last_seq INTEGER NOT NULL, count INTEGER NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS event_kinds (kind TEXT PRIMARY KEY, fields TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS commits (n INTEGER PRIMARY KEY, wall REAL NOT NULL, t REAL NOT NULL, events INTEGER NOT NULL);
""" + "".join(f"CREATE TABLE IF NOT EXISTS {t} (key TEXT PRIMARY KEY, data TEXT NOT NULL);\n" for t in TABLES)


class JournalError(RuntimeError):
    pass


def connect(path: str | Path) -> sqlite3.Connection:
    db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode: a commit survives the process being killed (the OS has it); only
    # a power cut can lose the last commits, never corrupt the file.
    db.execute("PRAGMA synchronous=NORMAL")
    return db


# Per event class: its field names (beyond t and seq) and a C-level getter of their values.
_LAYOUT: dict[type, tuple[tuple[str, ...], Any]] = {}


def _layout(cls: type) -> tuple[tuple[str, ...], Any]:
    names = tuple(f.name for f in fields(cls) if f.name not in ("t", "seq"))
    getter = attrgetter(*names) if len(names) > 1 else (lambda ev, n=names: (getattr(ev, n[0]),) if n else ())
    _LAYOUT[cls] = (names, getter)
    return _LAYOUT[cls]


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "__dataclass_fields__"):
        return {k: getattr(obj, k) for k in obj.__dataclass_fields__}
    return str(obj)


class Journal:
    def __init__(self, world: World, path: str | Path, commit_interval: float = 0.1, fresh: bool = True) -> None:
        if not 0 < commit_interval <= 60:
            raise JournalError(f"commit interval must be in (0, 60] seconds, got {commit_interval!r}")
        self.world = world
        self.path = Path(path)
        self.commit_interval = commit_interval
        try:
            self.db = connect(self.path)
            self.db.executescript(SCHEMA)
        except sqlite3.Error as e:
            raise JournalError(f"cannot open the journal {self.path}: {e}") from None
        self._pending: list[Event] = []
        self._kinds_written: set[str] = set(r[0] for r in self.db.execute("SELECT kind FROM event_kinds"))
        self._capture = StateCapture(world)
        self._lock = anyio.Lock()
        self.commits = 0
        self.events_written = 0
        self.failed: str | None = None  # why the last commit failed, while it does
        self.last_commit_wall: float | None = None
        if fresh:
            self._write_meta()
        world.bus.add_hook(self._pending.append)

    def _write_meta(self) -> None:
        world = self.world
        meta = {
            "format": "agent-ecology-journal/1",
            "config": world.config.model_dump_json(),
            "clock": world.clock.kind,
            "created": time.time(),
        }
        with self.db:
            self.db.execute("BEGIN")
            for k, v in meta.items():
                self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (k, str(v)))

    # -- committing -----------------------------------------------------------------------------
    async def run(self) -> None:
        """Commit every `commit_interval` real seconds (not an engine task: it holds no clock)."""
        while True:
            await anyio.sleep(self.commit_interval)
            await self.flush()

    async def flush(self) -> bool:
        """Commit everything up to now. True when it is on disk."""
        async with self._lock:
            # Capture on the loop (a consistent instant), write in a thread (never block it).
            events, self._pending[:] = list(self._pending), []
            changes = self._capture.changes()
            batch, kinds = self._encode(events)
            t = self.world.clock.now()
            try:
                await anyio.to_thread.run_sync(self._write, batch, kinds, changes, t)
            except (sqlite3.Error, OSError) as e:
                self._failed(f"{type(e).__name__}: {e}", events, changes)
                return False
            if self.failed is not None:
                self.failed = None
            self.commits += 1
            self.events_written += len(events)
            self.last_commit_wall = time.monotonic()
            return True

    def _encode(self, events: list[Event]) -> tuple[tuple | None, list[tuple[str, str]]]:
        """One JSON array for the whole batch: encoding per event would cost more than the
        action that made it."""
        if not events:
            return None, []
        new_kinds = []
        out = []
        known = self._kinds_written
        for ev in events:
            layout = _LAYOUT.get(ev.__class__) or _layout(ev.__class__)
            if ev.kind not in known:  # this file learns each kind's field names once
                known.add(ev.kind)
                new_kinds.append((ev.kind, json.dumps(layout[0])))
            values = layout[1](ev)
            out.append((ev.seq, ev.t, ev.kind, *values) if type(values) is tuple else (ev.seq, ev.t, ev.kind, values))
        data = json.dumps(out, separators=(",", ":"), default=_jsonable)
        return (events[0].seq, events[-1].seq, len(events), data), new_kinds

    def _write(self, batch: tuple | None, kinds: list[tuple[str, str]], changes: dict[str, dict[str, str | None]], t: float) -> None:
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            if kinds:
                db.executemany("INSERT OR REPLACE INTO event_kinds VALUES (?, ?)", kinds)
            if batch is not None:
                db.execute("INSERT OR REPLACE INTO event_batches VALUES (?, ?, ?, ?)", batch)
            for table, changed in changes.items():
                upserts = [(k, v) for k, v in changed.items() if v is not None]
                deletes = [(k,) for k, v in changed.items() if v is None]
                if upserts:
                    db.executemany(f"INSERT OR REPLACE INTO {table} VALUES (?, ?)", upserts)
                if deletes:
                    db.executemany(f"DELETE FROM {table} WHERE key = ?", deletes)
            db.execute("INSERT INTO commits (wall, t, events) VALUES (?, ?, ?)",
                       (time.time(), t, 0 if batch is None else batch[2]))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:  # SQLite rolls back by itself on some errors (disk full)
                db.execute("ROLLBACK")
            raise

    def _failed(self, why: str, events: list[Event], changes: dict[str, dict[str, str | None]]) -> None:
        """Keep what was not written for the next try, and pause the world once."""
        self._pending[:0] = events
        self._capture = StateCapture(self.world)  # rewrite every row when it works again
        first = self.failed is None
        self.failed = why
        world = self.world
        if first:
            if not world.paused:
                world.set_paused(True)
            world.bus.publish(WorldControl(world.clock.now(), "paused", f"journal failed ({why}); nothing is lost "
                                           f"up to the last commit; resume when {self.path} is writable again"))

    def close(self) -> None:
        try:
            self.db.close()
        except sqlite3.Error:
            pass


# -- reading a journal -----------------------------------------------------------------------------
def read_state(path: str | Path) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """(meta, tables) of a journal file, as of its last commit."""
    path = Path(path)
    if not path.exists():
        raise JournalError(f"{path}: no such journal")
    try:
        db = connect(path)
        meta = dict(db.execute("SELECT key, value FROM meta"))
        tables = {t: dict(db.execute(f"SELECT key, data FROM {t}")) for t in TABLES}
        db.close()
    except sqlite3.DatabaseError as e:
        raise JournalError(f"{path}: not a readable journal: {e}") from None
    if meta.get("format") != "agent-ecology-journal/1":
        raise JournalError(f"{path}: not an Agent Ecology journal")
    if not tables["world"]:
        raise JournalError(f"{path}: the journal has no committed state yet")
    return meta, tables


def iter_events(path: str | Path):
    """Every journalled event as a dict {seq, t, kind, fields...}, in order."""
    db = connect(path)
    try:
        names = {k: json.loads(f) for k, f in db.execute("SELECT kind, fields FROM event_kinds")}
        for (data,) in db.execute("SELECT data FROM event_batches ORDER BY first_seq"):
            for row in json.loads(data):
                seq, t, kind, *values = row
                yield {"seq": seq, "t": t, "kind": kind, **dict(zip(names.get(kind, ()), values))}
    finally:
        db.close()


def resume_world(path: str | Path, *, virtual: bool | None = None, sandbox_factory=None,
                 commit_interval: float = 0.1) -> World:
    """The world a journal describes, as of its last commit, journalling on in the same file.

    World time resumes where it stood; buckets accrue from their last update, so the time
    that passed before the crash is credited as usual and nothing is credited twice.
    """
    from pydantic import ValidationError

    from .clock import RealClock, VirtualClock
    from .config import WorldConfig
    from .persist import restore
    from .world import World

    meta, tables = read_state(path)
    try:
        config = WorldConfig.model_validate_json(meta["config"])
    except (ValidationError, KeyError) as e:
        raise JournalError(f"{path}: its world config no longer loads: {e}") from None
    now = json.loads(tables["world"]["clock"])["now"]
    ck = config.clock
    virtual = ck.virtual if virtual is None else virtual
    clock = VirtualClock(ck.epoch, start=now) if virtual else RealClock(ck.speed, ck.epoch, start=now)
    world = World(config.model_copy(update={"agents": []}), clock=clock, sandbox_factory=sandbox_factory)
    world.config = config
    restore(world, tables)
    world.attach_journal(path, commit_interval, fresh=False)
    return world
