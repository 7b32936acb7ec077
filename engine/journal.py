"""The journal: a world's durable record in one SQLite file (WAL).

Every event is appended to `events` (the append-only history, for export and analysis);
every commit also writes the rows of the world's state that changed since the last one
(`persist.StateCapture`), in the same transaction, so the file always holds one
consistent state: the world as of its last commit. Commits happen every
`commit_interval` real seconds (100 ms by default) and whenever someone awaits `flush()`
(the UI does, before it confirms an operator's action).

A commit that fails (a full disk, a read-only file) pauses the world with a clear
message instead of going on unrecorded; commits are retried, and the operator resumes (a
headless run resumes by itself when a retry works, and ends when none has for a while).

One process writes a journal at a time, and only a file that is a journal is ever written:
`journal_file` checks a file read-only and holds the writer's lock.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import sqlite3
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import anyio

from dataclasses import fields
from operator import attrgetter

from .config import MAX_COMMIT_INTERVAL
from .events import Event, WorldControl
from .llm_record import LLM_CALLS_TABLE
from .journal_file import (
    FORMAT,
    SCHEMA_VERSION,
    Commit,
    JournalError,
    JournalLocked,
    JournalUnwritable,
    WriterLock,
    check_writable,
    inspect,
    sidecar,
)
from .persist import TABLES, StateCapture
from .checkpoint import Cursors, capture_json, collector_paused, compress
# Readers of a journal, here too for the many that import them from the journal's module.
from .journal_read import iter_events, read_state

__all__ = ["Journal", "JournalError", "JournalLocked", "JournalUnwritable", "read_state", "iter_events",
           "DEFAULT_CHECKPOINT_EVERY"]

if TYPE_CHECKING:
    from .scheduler import Timer
    from .world import World

DEFAULT_CHECKPOINT_EVERY = 10.0  # world seconds
MAX_CHECKPOINT_EVERY = 10**6

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- events are written in batches, one row per commit: a list of (seq, t, kind, field values...)
-- tuples of plain values, pickled (read back by an unpickler that refuses every class)
CREATE TABLE IF NOT EXISTS event_batches (first_seq INTEGER PRIMARY KEY, last_seq INTEGER NOT NULL, count INTEGER NOT NULL, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS event_kinds (kind TEXT PRIMARY KEY, fields TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS commits (n INTEGER PRIMARY KEY, wall REAL NOT NULL, t REAL NOT NULL, events INTEGER NOT NULL);
-- the whole world at an instant (engine/checkpoint.py), zlib-compressed JSON: every
-- `checkpoint_every` world seconds, at every operator action and where a run ends
CREATE TABLE IF NOT EXISTS checkpoints (n INTEGER PRIMARY KEY, t REAL NOT NULL, seq INTEGER NOT NULL,
    reason TEXT NOT NULL, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS balances (key TEXT PRIMARY KEY, scrip INTEGER, rate_micro INTEGER, sliced_micro INTEGER,
    capacity REAL, balance REAL, last_update REAL, disk_quota INTEGER, disk_used INTEGER);
""" + "".join(f"CREATE TABLE IF NOT EXISTS {t} (key TEXT PRIMARY KEY, data TEXT NOT NULL);\n" for t in TABLES) + (
    LLM_CALLS_TABLE + ";\n")  # LLM requests and answers, for --llm-replay (engine/llm_record.py)


# Observations, not changes of state: a sandbox's stats every second are not journalled.
UNRECORDED = frozenset({"sandbox_stats"})


def connect(path: str | Path) -> sqlite3.Connection:
    db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode: a commit survives the process being killed (the OS has it); only
    # a power cut can lose the last commits, never corrupt the file.
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints run in a thread (Journal._checkpoints)
    return db


def _checkpoint(db: sqlite3.Connection) -> None:
    try:
        db.execute("PRAGMA wal_checkpoint(PASSIVE)")
    except sqlite3.Error:
        pass  # a failing disk shows in the next commit, which pauses the world


# Per event class: its field names (beyond t and seq) and a C-level getter of their values
# as a tuple; and per kind, the field names (written once into each journal file).
_LAYOUT: dict[type, tuple[tuple[str, ...], Any]] = {}
_KIND_FIELDS: dict[str, tuple[str, ...]] = {}


def _layout(cls: type[Event]) -> tuple[tuple[str, ...], Any]:
    names = tuple(f.name for f in fields(cls) if f.name not in ("t", "seq"))
    getter: Callable[[Any], tuple[Any, ...]]
    if len(names) > 1:
        getter = attrgetter(*names)
    elif names:
        one = attrgetter(names[0])
        getter = lambda ev: (one(ev),)  # noqa: E731
    else:
        getter = lambda ev: ()  # noqa: E731
    _LAYOUT[cls] = (names, getter)
    _KIND_FIELDS[cls.kind] = names
    return _LAYOUT[cls]


def _create(path: Path) -> WriterLock:
    """The writer's lock on a new journal, and its file, made empty and only if absent."""
    if path.exists() or path.is_symlink():
        raise JournalError(f"{path} exists: resume it with --resume, or choose a new file")
    check_writable(path)
    had_sidecar = sidecar(path).exists()
    try:
        lock = WriterLock.acquire(path)
    except JournalUnwritable:
        if not had_sidecar:  # made just now, on a disk that then refused its first bytes
            sidecar(path).unlink(missing_ok=True)
        raise
    try:
        # Readable by its owner only (SQLite gives its -wal and -shm files the same mode): it
        # holds the whole world, agents' code included.
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:  # another process made it between the check and the lock
        lock.release()
        raise JournalError(f"{path} exists: resume it with --resume, or choose a new file") from None
    except OSError as e:
        lock.release()
        if not had_sidecar:
            sidecar(path).unlink(missing_ok=True)
        raise JournalUnwritable(f"cannot create the journal {path}: {e.strerror}") from None
    return lock


def _remove_new(path: Path) -> None:
    """Undo a new journal that could not be started (a full disk): nothing half-made stays."""
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm"), sidecar(path)):
        try:
            p.unlink()
        except OSError:
            pass


class Journal:
    def __init__(self, world: World, path: str | Path, commit_interval: float = 0.1, fresh: bool = True,
                 lock: WriterLock | None = None, checkpoint_every: float = DEFAULT_CHECKPOINT_EVERY,
                 meta: dict[str, str] | None = None) -> None:
        """The journal writer: a new file (`fresh`, with `meta` added to its meta table), or
        an existing journal continued. The writer's lock is taken first (or handed over by
        `resume_world`), before any write. A checkpoint every `checkpoint_every` world
        seconds (0: only at operator actions and where runs end)."""
        if not (isinstance(commit_interval, (int, float)) and 0 < commit_interval <= MAX_COMMIT_INTERVAL):
            raise JournalError(f"commit interval must be in (0, {MAX_COMMIT_INTERVAL:g}] seconds, got {commit_interval!r}")
        if not (isinstance(checkpoint_every, (int, float)) and 0 <= checkpoint_every <= MAX_CHECKPOINT_EVERY):
            raise JournalError(f"checkpoint interval must be in [0, {MAX_CHECKPOINT_EVERY:g}] world seconds, "
                               f"got {checkpoint_every!r}")
        self.checkpoint_every = float(checkpoint_every)
        self.world = world
        self.path = Path(path)
        self.commit_interval = commit_interval
        if lock is None:
            if fresh:
                lock = _create(self.path)
            else:
                inspect(self.path)  # a journal, or refused untouched
                check_writable(self.path)
                lock = WriterLock.acquire(self.path)
        self._lock = lock
        db: sqlite3.Connection | None = None
        try:
            # Created readable by its owner only (SQLite gives its -wal and -shm files the
            # same mode): it holds the whole world, agents' code included.
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
            db = self.db = connect(self.path)
            db.executescript(SCHEMA)
            if fresh:
                self._write_meta(meta or {})
            created = str(db.execute("SELECT value FROM meta WHERE key = 'created'").fetchone()[0])
            row = db.execute("SELECT n, t FROM commits ORDER BY n DESC LIMIT 1").fetchone()
        except (sqlite3.Error, OSError, TypeError) as e:
            if db is not None:
                db.close()
            lock.release()
            if fresh:
                _remove_new(self.path)
            raise JournalUnwritable(f"cannot write the journal {self.path}: {e}") from None
        lock.bind(created)
        self.last_commit: Commit | None = None if row is None else Commit(int(row[0]), float(row[1]))
        # Commits the file lost since its last writer marked them (a deleted -wal).
        self.lost = None if fresh else lock.lost_since(self.last_commit, created)
        # Events since the last commit, in columns (see _record).
        self._seq: list[int] = []
        self._t: list[float] = []
        self._kind: list[str] = []
        self._values: list[Any] = []
        self._kinds_written: set[str] = set(r[0] for r in self.db.execute("SELECT kind FROM event_kinds"))
        self._capture = StateCapture(world)
        self._llm_calls: list[tuple] = []  # recorded LLM calls since the last commit
        # Checkpoints taken since the last commit: (t, seq, reason, bytes being compressed),
        # written with it. Compressed in a thread of their own (zlib lets go of the GIL).
        self._pending_checkpoints: list[tuple[float, int, str, Future[bytes]]] = []
        self._compressor: ThreadPoolExecutor | None = None
        self._cursors = Cursors()
        self._last_checkpoint = self.db.execute("SELECT t, seq FROM checkpoints ORDER BY n DESC LIMIT 1").fetchone()
        self._cadence: Timer | None = None
        self.checkpoints = 0
        self.checkpoint_seconds = 0.0  # wall seconds spent capturing and encoding them
        self._due = math.inf  # when the next commit falls due (monotonic)
        self._last_commit = 0.0
        self._overruns: deque[float] = deque(maxlen=30)  # due -> on disk, of recent commits
        self._monotonic = time.monotonic  # the cadence's clock (tests replace it)
        self.commits = 0
        self.events_written = 0
        self.failed: str | None = None  # why the last commit failed, while it does
        self.failing_since: float | None = None  # monotonic, while commits fail
        self.paused_world = False  # this journal paused the world (not an operator)
        self.resume_on_recovery = False  # headless: no operator to resume, so the journal does
        self.last_commit_wall: float | None = None
        world.bus.add_hook(self._record)

    def _record(self, ev: Event) -> None:
        """Keep the event's values in columns. A busy world's engine allocates and frees in
        balance, so the cyclic GC never runs; keeping tens of thousands of event objects (or
        tuples) until the commit made it run hundreds of times a second, full collections
        included, and halved the engine's speed. Ints, floats and strings in flat lists
        are not tracked by the GC."""
        kind = ev.kind
        if kind in UNRECORDED:
            return
        layout = _LAYOUT.get(ev.__class__) or _layout(ev.__class__)
        self._seq.append(ev.seq)
        self._t.append(ev.t)
        self._kind.append(kind)
        self._values.extend(layout[1](ev))

    def record_llm_call(self, row: tuple) -> None:
        """An LLM request and its answer (`llm_record.row_for`), written with the next commit."""
        self._llm_calls.append(row)

    def _write_meta(self, extra: dict[str, str]) -> None:
        world = self.world
        meta = {
            "format": f"{FORMAT}/{SCHEMA_VERSION}",
            "config": world.config.model_dump_json(),
            "clock": world.clock.kind,
            "created": time.time(),
            "checkpoint_every": self.checkpoint_every,
            **extra,
        }
        with self.db:
            self.db.execute("BEGIN")
            for k, v in meta.items():
                self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (k, str(v)))

    # -- checkpoints --------------------------------------------------------------------------------
    def start_checkpoints(self) -> None:
        """The world starts running: a checkpoint now if the file has none yet (a new
        journal's world as built), then one at every multiple of `checkpoint_every`, each
        a mark (engine/scheduler.py): the world after everything before that instant."""
        now = self.world.clock.now()
        if self._last_checkpoint is None:
            self.checkpoint(now, "start")
        if self.checkpoint_every > 0 and self._cadence is None:
            every = self.checkpoint_every
            nxt = (math.floor(now / every) + 1) * every
            self._cadence = self.world.scheduler.mark_at(nxt, self._on_cadence)

    def _on_cadence(self, now: float) -> None:
        self.checkpoint(now, "cadence")
        every = self.checkpoint_every
        k = math.floor(now / every) + 1
        if self._cadence is not None:  # (set by the cadence's start, which set this call)
            self._cadence.reschedule(k * every if k * every > now else (k + 1) * every)

    def stop_checkpoints(self) -> None:
        if self._cadence is not None:
            self._cadence.cancel()
            self._cadence = None

    def checkpoint(self, now: float, reason: str) -> None:
        """Take a checkpoint of the world as it stands (written with the next commit).
        One instant is checkpointed once (a cadence's and a run's end may meet)."""
        seq = self.world.bus.seq
        if self._last_checkpoint is not None and tuple(self._last_checkpoint) == (now, seq):
            return
        if self._due - self._monotonic() < 0.5 * self.commit_interval:
            # A commit falling due during the capture would be late by the capture's time,
            # and every commit after it would then fall due that much earlier (the interval
            # is kept a bound): commit first, and the cadence starts again from here.
            self._commit_due()
            seq = self.world.bus.seq  # (a failing commit says so in an event)
        started = time.perf_counter()
        with collector_paused():
            text = capture_json(self.world, self._cursors)
        if self._compressor is None:
            self._compressor = ThreadPoolExecutor(1, thread_name_prefix="checkpoint-zlib")
        blob = self._compressor.submit(compress, text)
        self.checkpoint_seconds += time.perf_counter() - started
        self._pending_checkpoints.append((now, seq, reason, blob))
        self._last_checkpoint = (now, seq)
        self.checkpoints += 1

    # -- committing -----------------------------------------------------------------------------
    async def run(self) -> None:
        """Commit every `commit_interval` real seconds (not an engine task: it holds no clock).

        Each commit is the world's due work (World.schedule_due): the first agent back in
        its loop after the due moment runs it, or this task's timer when no agent runs.
        The interval is a bound, not an average: a commit falls due early by the most any
        of the last 30 took from falling due to being on disk, so it lands within
        `interval` of the last one unless it takes longer than all of those did.
        """
        monotonic = self._monotonic
        self._last_commit = monotonic()
        self._schedule()
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._checkpoints)
            try:
                while True:
                    await anyio.sleep(max(0.0, self._due - monotonic()))
                    if monotonic() >= self._due:  # no agent has run it (that moves it on)
                        self.world.run_due()
            finally:
                self.world.schedule_due(math.inf, None)
                self.stop_checkpoints()

    def _schedule(self) -> None:
        margin = min(0.5 * self.commit_interval, max(self._overruns, default=0.0))
        self._due = self._last_commit + self.commit_interval - margin
        self.world.schedule_due(self._due, self._commit_due)

    def _commit_due(self) -> None:
        self.commit()
        self._last_commit = now = self._monotonic()
        self._overruns.append(max(0.0, now - self._due))  # (early, when a checkpoint commits first)
        self._schedule()

    async def _checkpoints(self) -> None:
        """Move the WAL into the database now and then, on a connection of its own in a
        thread: the only step that waits for the disk, and a single long call, so it never
        holds the loop (auto-checkpointing in the commit would)."""
        checkpointer = sqlite3.connect(str(self.path), check_same_thread=False)
        try:
            while True:
                await anyio.sleep(2.0)
                await anyio.to_thread.run_sync(_checkpoint, checkpointer)
        finally:
            checkpointer.close()

    async def flush(self) -> bool:
        """Commit everything up to now. True when it is on disk."""
        return self.commit()

    def commit(self) -> bool:
        """Commit everything up to now, without yielding: nothing else in the world runs
        between the capture and the write, so each commit is one consistent instant.
        True when it is on disk."""
        events = self._take_pending()
        changes = self._capture.changes()
        batch, kinds = self._encode(events)
        t = self.world.clock.now()
        try:
            # Written on the loop, not in a thread: the sqlite3 module gives up the GIL
            # around every row, and a thread taking it back from a busy loop waits a
            # switch interval each time, so 1,000 rows took seconds. Here, a few ms.
            n = self._write(batch, kinds, changes, t)
        except (sqlite3.Error, OSError) as e:
            self._failed(f"{type(e).__name__}: {e}", events, changes)
            return False
        self.last_commit = Commit(n, t)
        self._lock.mark(self.last_commit)
        if self.failed is not None:
            self._recovered()
        self._llm_calls.clear()  # on disk now (kept for the next try when a commit fails)
        self._pending_checkpoints.clear()
        self.commits += 1
        self.events_written += len(events[0])
        self.last_commit_wall = time.monotonic()
        return True

    def _take_pending(self) -> tuple[list, list, list, list]:
        cols = (self._seq, self._t, self._kind, self._values)
        self._seq, self._t, self._kind, self._values = [], [], [], []
        return cols

    def _encode(self, cols: tuple[list, list, list, list]) -> tuple[tuple | None, list[tuple[str, str]]]:
        """The batch pickled as four columns (seq, t, kind, the flat field values): JSON
        costs 0.9 µs an event, more than the action that made it; this costs far less."""
        seqs = cols[0]
        if not seqs:
            return None, []
        new_kinds = [(kind, json.dumps(_KIND_FIELDS[kind])) for kind in _KIND_FIELDS if kind not in self._kinds_written]
        self._kinds_written.update(k for k, _ in new_kinds)
        data = pickle.dumps(cols, protocol=5)
        return (seqs[0], seqs[-1], len(seqs), data), new_kinds

    def _write(self, batch: tuple | None, kinds: list[tuple[str, str]], changes: dict[str, dict[str, Any]], t: float) -> int:
        db = self.db
        # (compressed by now, but for the last one taken: a few ms)
        checkpoints = [(at, seq, why, blob.result()) for at, seq, why, blob in self._pending_checkpoints]
        db.execute("BEGIN IMMEDIATE")
        try:
            if kinds:
                db.executemany("INSERT OR REPLACE INTO event_kinds VALUES (?, ?)", kinds)
            if batch is not None:
                db.execute("INSERT OR REPLACE INTO event_batches VALUES (?, ?, ?, ?)", batch)
            balances = changes.pop("balances", {})
            if balances:
                db.executemany("INSERT OR REPLACE INTO balances VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                               [(k, *v) for k, v in balances.items()])
            for table, changed in changes.items():
                upserts = [(k, v) for k, v in changed.items() if v is not None]
                deletes = [(k,) for k, v in changed.items() if v is None]
                if upserts:
                    db.executemany(f"INSERT OR REPLACE INTO {table} VALUES (?, ?)", upserts)
                if deletes:
                    db.executemany(f"DELETE FROM {table} WHERE key = ?", deletes)
            if checkpoints:
                db.executemany("INSERT INTO checkpoints (t, seq, reason, data) VALUES (?, ?, ?, ?)", checkpoints)
            if self._llm_calls:
                db.executemany("INSERT INTO llm_calls (key, agent, t, model, params, answer, finish, prompt_tokens, "
                               "completion_tokens, cached_tokens, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                               self._llm_calls)
            n = db.execute("INSERT INTO commits (wall, t, events) VALUES (?, ?, ?)",
                           (time.time(), t, 0 if batch is None else batch[2])).lastrowid
            assert n is not None  # (an INSERT's row id)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:  # SQLite rolls back by itself on some errors (disk full)
                db.execute("ROLLBACK")
            raise
        return n

    def _failed(self, why: str, events: tuple[list, list, list, list], changes: dict) -> None:
        """Keep what was not written for the next try, and pause the world once."""
        pending: tuple[list[Any], ...] = (self._seq, self._t, self._kind, self._values)
        for old, new in zip(events, pending):
            old.extend(new)
        self._seq, self._t, self._kind, self._values = events
        self._capture = StateCapture(self.world)  # rewrite every row when it works again
        first = self.failed is None
        self.failed = why
        world = self.world
        if first:
            self.failing_since = self._monotonic()
            if not world.paused:
                world.set_paused(True)
                self.paused_world = True
            world.bus.publish(WorldControl(world.clock.now(), "paused", f"journal failed ({why}); nothing is lost "
                                           f"up to the last commit; resume when {self.path} is writable again"))

    def _recovered(self) -> None:
        self.failed = None
        self.failing_since = None
        world = self.world
        if self.paused_world and self.resume_on_recovery and world.paused:
            world.set_paused(False)
            world.bus.publish(WorldControl(world.clock.now(), "resumed", f"the journal {self.path} is written again"))
        self.paused_world = False

    def lost_warning(self) -> str | None:
        """What a resume lost because the file had lost commits (a deleted -wal), in words."""
        if self.lost is None:
            return None
        commits, seconds = self.lost
        at = 0.0 if self.last_commit is None else self.last_commit.t
        return (f"{self.path} lost its last {commits:,} commits (its -wal file was deleted or cut short): "
                f"{seconds:,.1f} world seconds lost; resuming at t={at:,.1f}s, where it had reached "
                f"t={at + seconds:,.1f}s")

    def close(self) -> None:
        """Close the file and give up the writer's lock (after the last connection)."""
        if self._compressor is not None:
            self._compressor.shutdown(wait=False, cancel_futures=True)
        try:
            self.db.close()
        except sqlite3.Error:
            pass
        self._lock.release()
