"""Host-side measurement of one call: the CPU time, memory and wall time a bill is made of.

Nothing here believes a figure from inside a sandbox. A container's figures come from its
cgroup's files on the host; a bubblewrap or subprocess sandbox's from the kernel's accounting
of its process tree in /proc (each process's own CPU time plus that of the children it
reaped), read before and after the call. The process-tree meter also watches the tree's
memory while a call runs, shared memory included, and says when it is over the limit.
"""

from __future__ import annotations

import contextlib
import os
import signal
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from containers.stats import CgroupFiles

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
WATCH_INTERVAL = 0.05  # seconds between two readings of a sandbox's memory during a call


@dataclass(frozen=True, slots=True)
class Measure:
    """What the host measured for one call."""

    cpu_seconds: float
    peak_memory_bytes: int
    source: str  # "cgroup v1", "proc", "quota x wall" ...


def _finite_non_negative(value: float) -> float:
    return value if value >= 0 and value != float("inf") else 0.0  # NaN fails `>= 0` too


class Meter(ABC):
    """Measures one call on the host: `begin()` before sending it, `end(wall)` after."""

    watches = False  # whether `watch` must run alongside the call

    @abstractmethod
    def begin(self) -> None: ...

    @abstractmethod
    def end(self, wall_seconds: float) -> Measure: ...

    async def watch(self, over_limit: Callable[[str], None]) -> None:  # noqa: B027
        """Run during the call; call `over_limit(why)` (once) if the sandbox breaks a limit."""


class QuotaMeter(Meter):
    """For a container whose cgroup this host cannot read (a remote Docker host): the kernel
    holds it to `cpus` cores, so wall time x cpus bounds what the call can have used."""

    def __init__(self, cpus: float) -> None:
        self.cpus = cpus

    def begin(self) -> None:
        pass

    def end(self, wall_seconds: float) -> Measure:
        return Measure(_finite_non_negative(wall_seconds * self.cpus), 0, "quota x wall")


# -- containers: cgroup files -----------------------------------------------------------------


class CgroupMeter(Meter):
    """A container's CPU counter (ns) and memory peak from its cgroup, read on the host."""

    def __init__(self, files: CgroupFiles, fallback: QuotaMeter) -> None:
        self.files = files
        self.fallback = fallback
        self._cpu_ns: int | None = None
        self._peak_reset = False

    def begin(self) -> None:
        self._cpu_ns = self._read_cpu_ns()
        self._peak_reset = self.files.reset_peak()

    def end(self, wall_seconds: float) -> Measure:
        after = self._read_cpu_ns()
        if self._cpu_ns is None or after is None:  # the container is gone with its cgroup
            return self.fallback.end(wall_seconds)
        peak = self.files.peak_bytes() if self._peak_reset else self.files.current_bytes()
        cpu = _finite_non_negative((after - self._cpu_ns) / 1e9)
        return Measure(cpu, max(0, peak or 0), f"cgroup v{self.files.version}")

    def _read_cpu_ns(self) -> int | None:
        try:
            return self.files.cpu_ns()
        except (OSError, ValueError):
            return None


# -- processes: /proc ------------------------------------------------------------------------


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


class ProcessTreeMeter(Meter):
    """A runner's process tree (for bubblewrap, the bwrap process and the sandbox under it).

    CPU comes in clock ticks (10 ms): one call is charged to a tick, and since the readings
    telescope, the sum over a runner's calls is exact to a tick.
    """

    watches = True

    def __init__(self, root_pid: int, memory_limit: int, interval: float = WATCH_INTERVAL):
        self.root_pid = root_pid
        self.memory_limit = memory_limit
        self.interval = interval
        self._start: TreeReading | None = None
        self._last: TreeReading | None = None
        self.peak = 0

    def begin(self) -> None:
        self._start = self._last = read_tree(self.root_pid)
        self.peak = 0

    def _read(self) -> TreeReading | None:
        started = self._start.started if self._start is not None else None
        return read_tree(self.root_pid, started)

    def sample(self) -> int:
        """One reading during the call; the tree's memory now."""
        pids = process_tree(self.root_pid)
        memory = tree_memory(pids, self.memory_limit)
        reading = self._read()
        if reading is not None:
            self._last = reading
        self.peak = max(self.peak, memory)
        return memory

    def end(self, wall_seconds: float) -> Measure:
        after = self._read() or self._last
        if not self.peak and after is not None:
            self.peak = after.rss_bytes  # a call too short for the watchdog: what it left
        if self._start is None or after is None:
            return Measure(0.0, self.peak, "proc")
        cpu = (after.cpu_ticks - self._start.cpu_ticks) / CLOCK_TICKS
        return Measure(_finite_non_negative(cpu), self.peak, "proc")

    async def watch(self, over_limit: Callable[[str], None]) -> None:
        while True:
            await anyio.sleep(self.interval)
            memory = self.sample()
            if memory > self.memory_limit:
                over_limit(
                    f"the sandbox's processes held {memory / 2**20:.0f} MiB, over its "
                    f"{self.memory_limit / 2**20:.0f} MiB memory limit"
                )
                return


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
