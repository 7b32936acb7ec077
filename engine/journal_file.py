"""A journal file's guard: what may be opened as a journal, and by one writer at a time.

* `inspect(path)` decides whether a file is an Agent Ecology journal without writing
  anything: the header bytes first, then SQLite opened read-only (`mode=ro`, and
  `immutable=1` when no `-wal` file exists, so no `-wal`/`-shm` is created either), then the
  meta table and its schema version. Anything else is refused and left byte-identical.
* `WriterLock` is the one-writer rule: an exclusive `flock` on a sidecar file
  (`FILE-lock`), taken before anything is written and held for the writer's life. The
  kernel drops it when the process dies, however it dies. Readers never take it. SQLite's
  own locks could not do this: `locking_mode=EXCLUSIVE` in WAL mode shuts readers out too.
* The same sidecar holds the writer's mark: its PID and, after each commit, the commit's
  number and world time. A commit lands in SQLite before its mark, so the mark is never
  ahead of the file, unless the file lost commits it had: its `-wal` was deleted or cut
  short. SQLite cannot notice that by itself, because a checkpoint always stops at a
  commit, so what is left is a consistent older world. The mark is how the resume notices,
  and says how much world time was lost.
"""

from __future__ import annotations

import errno
import fcntl
import os
import sqlite3
import stat
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

FORMAT = "agent-ecology-journal"
SCHEMA_VERSION = "1"
SQLITE_HEADER = b"SQLite format 3\x00"
# The tables every journal of this schema has (later versions may add more).
REQUIRED_TABLES = frozenset({"meta", "event_batches", "event_kinds", "commits", "balances",
                             "artifacts", "agents", "services", "world"})
_MARK_SIZE = 96  # the mark is rewritten in place, always this long


class JournalError(RuntimeError):
    """The file given is not a journal this process may open (bad input: exit code 2)."""


class JournalLocked(JournalError):
    """Another process is writing this journal."""


class JournalUnwritable(JournalError):
    """The journal's storage refuses writes: read-only, full, gone (exit code 3)."""


@dataclass(frozen=True)
class Commit:
    """A journal's last commit: its number (the commits table's `n`) and world time."""

    n: int
    t: float


@dataclass(frozen=True)
class Inspection:
    meta: dict[str, str]
    last_commit: Commit | None


def sidecar(path: Path) -> Path:
    return path.with_name(path.name + "-lock")


def readonly_uri(path: Path, immutable: bool = False) -> str:
    return f"file:{quote(str(path.resolve()))}?mode=ro" + ("&immutable=1" if immutable else "")


def inspect(path: str | Path) -> Inspection:
    """What the file holds, if it is a journal; refuses anything else. Writes nothing."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise JournalError(f"{path}: no such journal") from None
    except OSError as e:
        raise JournalError(f"{path}: cannot read it: {e.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        raise JournalError(f"{path} is a directory, not a journal")
    if not stat.S_ISREG(st.st_mode):
        raise JournalError(f"{path} is not a regular file, so not a journal")
    if st.st_size == 0:
        raise JournalError(f"{path} is empty: not a journal")
    try:
        with path.open("rb") as f:
            head = f.read(len(SQLITE_HEADER))
    except OSError as e:
        raise JournalError(f"{path}: cannot read it: {e.strerror}") from None
    if head != SQLITE_HEADER:
        raise JournalError(f"{path} is not a journal (not an SQLite database)")
    # Without a -wal file the main file is the whole database: read it as immutable, so
    # SQLite neither locks it nor creates -wal/-shm beside it. With one, the newest commits
    # may be only there, so SQLite must read it (it exists already: nothing new appears
    # but, at most, the -shm index beside it).
    has_wal = path.with_name(path.name + "-wal").exists()
    try:
        db = sqlite3.connect(readonly_uri(path, immutable=not has_wal), uri=True)
    except sqlite3.Error as e:
        raise JournalError(f"{path}: cannot open it read-only: {e}") from None
    try:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "meta" not in tables:
            raise JournalError(f"{path} is an SQLite database but not an Agent Ecology journal (no meta table)")
        meta = {str(k): str(v) for k, v in db.execute("SELECT key, value FROM meta")}
        name, _, version = meta.get("format", "").partition("/")
        if name != FORMAT:
            raise JournalError(f"{path} is an SQLite database but not an Agent Ecology journal")
        if version != SCHEMA_VERSION:
            raise JournalError(f"{path} is a journal of schema version {version!r}; this version of "
                               f"ecology reads version {SCHEMA_VERSION}")
        missing = REQUIRED_TABLES - tables
        if missing:
            raise JournalError(f"{path} is a damaged journal: tables {', '.join(sorted(missing))} are missing")
        row = db.execute("SELECT n, t FROM commits ORDER BY n DESC LIMIT 1").fetchone()
    except sqlite3.Error as e:
        raise JournalError(f"{path} is not a readable journal: {e}") from None
    finally:
        db.close()
    return Inspection(meta, None if row is None else Commit(int(row[0]), float(row[1])))


def check_writable(path: Path) -> None:
    """Refuse a journal whose file or directory this process may not write (the `-wal`,
    `-shm` and lock files live beside it), before the world starts: SQLite would open
    it read-only without a word, and only the first commit would fail."""
    for target in (path, path.parent) if path.exists() else (path.parent,):
        if not os.access(target, os.W_OK):
            why = "a read-only file system" if _read_only_fs(target) else "no permission to write"
            raise JournalUnwritable(f"{path} cannot be written ({why}: {target})")


def _read_only_fs(target: Path) -> bool:
    try:
        return bool(os.statvfs(target).f_flag & os.ST_RDONLY)
    except OSError:
        return False


class WriterLock:
    """The exclusive right to write one journal, held until `release()` or the process ends."""

    def __init__(self, path: Path, fd: int, previous: tuple[int, Commit | None, str] | None) -> None:
        self.path = path
        self._fd = fd
        # The mark the last writer left: (pid, its last commit, the journal's `created`).
        self.previous = previous
        self._created = ""

    @classmethod
    def acquire(cls, path: str | Path) -> WriterLock:
        path = Path(path)
        lock_path = sidecar(path)
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as e:
            if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT):
                raise JournalUnwritable(f"{path} cannot be written: cannot create {lock_path}: {e.strerror}") from None
            raise JournalError(f"{path}: cannot open {lock_path}: {e.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_mark(fd)
            os.close(fd)
            who = f"process {holder[0]}" if holder else "another process"
            raise JournalLocked(f"{path} is being written by {who}") from None
        except OSError as e:
            os.close(fd)
            raise JournalError(f"{path}: cannot lock {lock_path}: {e.strerror}") from None
        lock = cls(path, fd, _read_mark(fd))
        try:
            lock._write(None)  # this process's PID, at once: a second writer's refusal names it
        except OSError as e:
            lock.release()
            raise JournalUnwritable(f"{path} cannot be written: {lock_path}: {e.strerror}") from None
        return lock

    def bind(self, created: str) -> None:
        """Tie the marks to one journal (its `created` stamp): a mark left by another
        journal of the same name is not taken as evidence about this one."""
        self._created = created

    def mark(self, commit: Commit) -> None:
        """Record a commit that is in the file (called after SQLite's COMMIT returned)."""
        try:
            self._write(commit)
        except OSError:
            pass  # a missing mark only weakens the lost-WAL check; the commit itself stands

    def _write(self, commit: Commit | None) -> None:
        created = self._created
        if commit is None and self.previous is not None and self.previous[1] is not None:
            # Taking the lock changes only the PID: the last writer's mark stays the
            # evidence until this writer commits (a refused resume must not erase it).
            commit, created = self.previous[1], self.previous[2]
        text = f"{os.getpid()}" if commit is None else f"{os.getpid()} {commit.n} {commit.t!r} {created}"
        os.pwrite(self._fd, text.encode().ljust(_MARK_SIZE)[:_MARK_SIZE], 0)

    def lost_since(self, last: Commit | None, created: str) -> tuple[int, float] | None:
        """(commits, world seconds) the journal lost since the last writer's mark, or None."""
        prev = self.previous
        if prev is None or prev[1] is None or prev[2] != created:
            return None
        mark = prev[1]
        have = last.n if last is not None else 0
        if mark.n <= have:
            return None
        return mark.n - have, max(0.0, mark.t - (last.t if last is not None else 0.0))

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = -1


def writer_of(path: str | Path) -> str | None:
    """Who writes `path` now ("process PID"), or None: a probe that creates and writes
    nothing (a shared lock, dropped at once, fails while a writer holds its lock)."""
    try:
        fd = os.open(sidecar(Path(path)), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _read_mark(fd)
        return f"process {holder[0]}" if holder else "another process"
    except OSError:
        return None
    finally:
        os.close(fd)
    return None


def _read_mark(fd: int) -> tuple[int, Commit | None, str] | None:
    try:
        parts = os.pread(fd, _MARK_SIZE, 0).decode("ascii").split()
        pid = int(parts[0])
        if len(parts) == 1:
            return pid, None, ""
        return pid, Commit(int(parts[1]), float(parts[2])), parts[3] if len(parts) > 3 else ""
    except (OSError, UnicodeDecodeError, ValueError, IndexError):
        return None
