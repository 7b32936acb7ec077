"""Reading the kernel's accounting of a process tree from /proc, and ending one: a leaf the
meter (per call), the stats monitor (per sample) and the process backends (kill, clean up)
share. Nothing here trusts a process; a pid that is gone reads as gone, not as an error.
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except (OSError, ValueError):
        return []


def process_tree(pid: int) -> list[int]:
    """pid and all its descendants still alive (via /proc/<pid>/task/<pid>/children)."""
    seen, todo = [], [pid]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.append(current)
        todo.extend(_children(current))
    return seen


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


@dataclass(frozen=True, slots=True)
class TreeReading:
    """CPU ticks (own plus reaped children's, over the tree), resident memory and count."""

    cpu_ticks: int
    rss_bytes: int
    processes: int
    started: int  # the root's start time (clock ticks after boot): who the pid is


def read_tree(pid: int, started: int | None = None) -> TreeReading | None:
    """The tree under `pid` from /proc/<pid>/stat, or None if `pid` itself is gone (or, with
    `started`, is now another process that reuses the pid).

    utime + stime + cutime + cstime of every live member: a process that ended and was
    reaped inside the tree is in its reaper's cutime, so nothing a call ran is lost while
    the tree's root lives, and nothing is counted twice.
    """
    cpu = rss = count = 0
    root_started = 0
    for member in process_tree(pid):
        fields = _stat_fields(member)
        if fields is None:
            if member == pid:
                return None
            continue
        if member == pid:
            root_started = int(fields[19])  # field 22, starttime
            if started is not None and root_started != started:
                return None
        # utime stime cutime cstime (fields 14-17) and rss (field 24), counted from state = 3.
        cpu += sum(int(x) for x in fields[11:15])
        rss += int(fields[21]) * PAGE_SIZE
        count += 1
    return TreeReading(cpu, rss, count, root_started)


def _status_memory(pid: int) -> int:
    """Anonymous plus shared (shmem, tmpfs) resident memory of one process, from its status."""
    total = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("RssAnon:", "RssShmem:")):
                    total += int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return total


def _proportional_memory(pid: int) -> int | None:
    """The same, with pages shared between processes divided among them (PSS); 0 for a
    process that is gone, None where /proc will not say (not ours to read)."""
    total = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith(("Pss_Anon:", "Pss_Shmem:")):
                    total += int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        return 0
    except (OSError, ValueError, IndexError):
        return None if os.path.exists(f"/proc/{pid}") else 0
    return total


def tree_memory(pids: list[int], limit: int) -> int:
    """Memory of a process tree, shared memory included. Cheap status files first; above
    `limit`, proportional figures (a forked worker shares its parent's pages: counted once)."""
    total = sum(_status_memory(pid) for pid in pids)
    if total <= limit:
        return total
    proportional = [_proportional_memory(pid) for pid in pids]
    if any(p is None for p in proportional):
        return total  # not readable here: the conservative figure stands
    return sum(p for p in proportional if p is not None)


def kill_tree(pid: int | None, spare_root: bool = False) -> None:
    """SIGKILL a process and everything under it (None: nothing to kill), or with
    `spare_root` only what is under it."""
    if pid is None:
        return
    for member in process_tree(pid):
        if spare_root and member == pid:
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(member, signal.SIGKILL)


def processes_of_uid(uid: int) -> list[int]:
    """Every process running as `uid` (an agent's own uid: all of it is the agent's)."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found
