"""Reading a journal, never writing it: its state rows, its events, its checkpoints.

Readers take no lock and open the file read-only (`mode=ro`), so a journal being written
can be read (exported, replayed, forked from) at the same time: SQLite's WAL gives each
read the file as of a commit. Everything read is hostile input: events are unpickled by an
unpickler that refuses every class, checkpoints are checked as they are restored.
"""

from __future__ import annotations

import io
import json
import pickle
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .checkpoint import decode as decode_checkpoint
from .journal_file import JournalError, inspect, readonly_uri
from .persist import BALANCE_COLUMNS, TABLES

__all__ = ["CheckpointInfo", "iter_events", "list_checkpoints", "read_checkpoint", "read_state", "reader"]


class PlainUnpickler(pickle.Unpickler):
    """Loads lists, tuples, dicts, strings and numbers, and refuses anything else, so a
    journal file from elsewhere cannot make this process build objects or run code."""

    def find_class(self, module: str, name: str):
        raise pickle.UnpicklingError(f"a journal holds plain data only, not {module}.{name}")


def reader(path: Path) -> sqlite3.Connection:
    """A read-only connection to a file `inspect` has found to be a journal. Readers take
    no lock: a journal being written can be read (exported) at the same time."""
    return sqlite3.connect(readonly_uri(path), uri=True, check_same_thread=False)


def read_state(path: str | Path) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """(meta, tables) of a journal file, as of its last commit. Writes nothing to it."""
    path = Path(path)
    meta = inspect(path).meta
    try:
        db = reader(path)
        try:
            tables = {t: dict(db.execute(f"SELECT key, data FROM {t}")) for t in TABLES}
            tables["balances"] = {r[0]: r[1:] for r in db.execute(f"SELECT key, {', '.join(BALANCE_COLUMNS)} FROM balances")}
        finally:
            db.close()
    except sqlite3.Error as e:
        raise JournalError(f"{path}: not a readable journal: {e}") from None
    if not tables["world"]:
        raise JournalError(f"{path}: the journal has no committed state yet")
    return meta, tables


def iter_events(path: str | Path, after: int = 0):
    """Every journalled event as a dict {seq, t, kind, fields...}, in order (those with a
    seq above `after`)."""
    path = Path(path)
    inspect(path)
    db = reader(path)
    try:
        names = {k: json.loads(f) for k, f in db.execute("SELECT kind, fields FROM event_kinds")}
        for (data,) in db.execute("SELECT data FROM event_batches WHERE last_seq > ? ORDER BY first_seq", (after,)):
            seqs, ts, kinds, values = PlainUnpickler(io.BytesIO(data)).load()
            at = 0
            for seq, t, kind in zip(seqs, ts, kinds):
                fields_ = names.get(kind, ())
                if seq > after:
                    yield {"seq": seq, "t": t, "kind": kind, **dict(zip(fields_, values[at:at + len(fields_)]))}
                at += len(fields_)
    finally:
        db.close()


# -- checkpoints ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckpointInfo:
    """One checkpoint of a journal: its number, world time, the event count then, and why."""

    n: int
    t: float
    seq: int
    reason: str


def list_checkpoints(path: str | Path) -> list[CheckpointInfo]:
    """The journal's checkpoints in order, as of its last commit. A journal written before
    checkpoints existed is refused with a message saying so (JournalError)."""
    path = Path(path)
    inspect(path)
    try:
        db = reader(path)
        try:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "checkpoints" not in tables:
                raise JournalError(f"{path} was recorded by an older version of ecology, without checkpoints: "
                                   "it can be resumed from its end and exported, not replayed or forked")
            rows = db.execute("SELECT n, t, seq, reason FROM checkpoints ORDER BY n").fetchall()
        finally:
            db.close()
    except sqlite3.Error as e:
        raise JournalError(f"{path}: not a readable journal: {e}") from None
    infos = []
    for n, t, seq, reason in rows:
        if type(n) is not int or type(t) not in (float, int) or type(seq) is not int or type(reason) is not str:
            raise JournalError(f"{path}: a damaged checkpoint index")
        infos.append(CheckpointInfo(n, float(t), seq, reason))
    if not infos:
        raise JournalError(f"{path} has no checkpoint yet (its world never ran while recorded)")
    return infos


def read_checkpoint(path: str | Path, n: int, db: sqlite3.Connection | None = None) -> dict[str, Any]:
    """Checkpoint `n`, decoded (CheckpointError when damaged)."""
    own = db is None
    db = db or reader(Path(path))
    try:
        row = db.execute("SELECT data FROM checkpoints WHERE n = ?", (n,)).fetchone()
    except sqlite3.Error as e:
        raise JournalError(f"{path}: not a readable journal: {e}") from None
    finally:
        if own:
            db.close()
    if row is None or not isinstance(row[0], bytes):
        raise JournalError(f"{path}: no checkpoint {n}")
    return decode_checkpoint(row[0])


