"""Host-side measurement of one call: the CPU time, memory and wall time a bill is made of.

Nothing here believes a figure from inside a sandbox. A container's figures come from its
cgroup's files on the host; a bubblewrap or subprocess sandbox's from the kernel's accounting
of its process tree in /proc (each process's own CPU time plus that of the children it
reaped), read before and after the call. The process-tree meter also watches the tree's
memory while a call runs, shared memory included, and says when it is over the limit.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

from containers.procfs import CLOCK_TICKS, TreeReading, process_tree, read_tree, tree_memory

if TYPE_CHECKING:
    from containers.stats import CgroupFiles

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


# -- processes: their tree in /proc (containers/procfs.py) ------------------------------------


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
