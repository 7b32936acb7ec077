"""Calibration: which total compute rate this machine (or this container's limits) sustains.

Runs the same CPU-bound workload in N sandboxes at once and measures the CPU seconds they
really got per second of wall time. With `compute_per_cpu` compute units per CPU-second
(the world's exchange rate, default 10), the suggested `[compute] total_rate` is
sustained_cpus * compute_per_cpu, less a headroom left for the engine and the UI.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from engine.sandbox import SandboxLimits

DEFAULT_COMPUTE_PER_CPU = 10.0

# Spins for a fixed wall time and counts loops: the CPU seconds it gets are the measurement.
WORKLOAD = """
import time

def run(seconds):
    end = time.monotonic() + seconds
    loops = 0
    while time.monotonic() < end:
        for _ in range(1000):
            pass
        loops += 1
    return loops
"""


def cpus_for_rate(rate: float, compute_per_cpu: float = DEFAULT_COMPUTE_PER_CPU) -> float:
    """The CPU quota (cores) that backs a compute rate (units/s)."""
    return rate / compute_per_cpu


def compute_for_cpu_seconds(
    cpu_seconds: float, compute_per_cpu: float = DEFAULT_COMPUTE_PER_CPU
) -> float:
    """The compute a call costs for the CPU time it really used."""
    return cpu_seconds * compute_per_cpu


def memory_limit_bytes() -> int | None:
    """The memory limit of the cgroup we run in (e.g. compose's mem_limit), if any."""
    candidates = []
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if controllers == "":
                candidates.append(Path("/sys/fs/cgroup") / path.lstrip("/") / "memory.max")
            elif "memory" in controllers.split(","):
                candidates.append(
                    Path("/sys/fs/cgroup/memory") / path.lstrip("/") / "memory.limit_in_bytes"
                )
    except (OSError, ValueError):
        return None
    candidates += [
        Path("/sys/fs/cgroup/memory.max"),
        Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
    ]
    for candidate in candidates:
        try:
            text = candidate.read_text().strip()
        except OSError:
            continue
        if text != "max" and int(text) < 1 << 60:
            return int(text)
    return None


@dataclass(frozen=True, slots=True)
class Calibration:
    backend: str
    sandboxes: int
    cpus_each: float
    seconds: float
    cpu_seconds: float  # summed over all sandboxes
    wall_seconds: float
    failures: int
    compute_per_cpu: float
    headroom: float
    memory_limit_bytes: int | None
    memory_per_sandbox: int

    @property
    def sustained_cpus(self) -> float:
        return self.cpu_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0

    @property
    def total_rate(self) -> float:
        """The suggested `[compute] total_rate`, in compute units per second."""
        raw = self.sustained_cpus * self.compute_per_cpu * (1 - self.headroom)
        return math.floor(raw * 10) / 10

    @property
    def max_sandboxes_by_memory(self) -> int | None:
        if self.memory_limit_bytes is None:
            return None
        return self.memory_limit_bytes // self.memory_per_sandbox

    def report(self) -> str:
        lines = [
            (
                f"sandbox: {self.backend}; {self.sandboxes} sandboxes x {self.cpus_each:g} CPU "
                f"spinning for {self.seconds:g} s"
            ),
            f"measured: {self.cpu_seconds:.2f} CPU-seconds in {self.wall_seconds:.2f} s "
            f"= {self.sustained_cpus:.2f} CPUs sustained"
            + (f" ({self.failures} call(s) failed)" if self.failures else ""),
            (
                f"exchange rate: 1 CPU-second = {self.compute_per_cpu:g} compute units; "
                f"headroom {self.headroom:.0%}"
            ),
        ]
        if self.memory_limit_bytes is not None:
            lines.append(
                f"memory limit: {self.memory_limit_bytes / 2**20:.0f} MiB, room for about "
                f"{self.max_sandboxes_by_memory} sandboxes of "
                f"{self.memory_per_sandbox / 2**20:.0f} MiB"
            )
        lines += ["", "[compute]", f"total_rate = {self.total_rate:g}"]
        return "\n".join(lines)


async def calibrate(
    sandbox: Any,
    *,
    sandboxes: int | None = None,
    seconds: float = 3.0,
    cpus_each: float = 1.0,
    compute_per_cpu: float = DEFAULT_COMPUTE_PER_CPU,
    headroom: float = 0.1,
    memory_bytes: int = SandboxLimits().memory_bytes,
) -> Calibration:
    """Measure with an open sandbox; starts and stops its own `calibrate-N` agents."""
    if compute_per_cpu <= 0:
        raise ValueError("compute_per_cpu must be positive")
    if not 0 <= headroom < 1:
        raise ValueError("headroom must be in [0, 1)")
    count = sandboxes or max(
        2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 2
    )
    agents = [f"calibrate-{n}" for n in range(count)]
    limits = SandboxLimits(cpus=cpus_each, memory_bytes=memory_bytes)
    cpu_total = 0.0
    failures = 0
    try:
        async with anyio.create_task_group() as tg:
            for agent in agents:
                tg.start_soon(sandbox.start, agent, limits)
        # One short warm-up call each: the first call pays for imports and page faults.
        async with anyio.create_task_group() as tg:
            for agent in agents:
                tg.start_soon(sandbox.run, agent, WORKLOAD, {"seconds": 0.05}, 10.0)
        results = []

        async def one(agent: str) -> None:
            results.append(await sandbox.run(agent, WORKLOAD, {"seconds": seconds}, seconds + 30))

        started = anyio.current_time()
        async with anyio.create_task_group() as tg:
            for agent in agents:
                tg.start_soon(one, agent)
        wall = anyio.current_time() - started
        for result in results:
            cpu_total += result.cpu_seconds
            failures += 0 if result.ok else 1
    finally:
        with anyio.CancelScope(shield=True):
            for agent in agents:
                await sandbox.stop(agent)
    return Calibration(
        backend=sandbox.name,
        sandboxes=count,
        cpus_each=cpus_each,
        seconds=seconds,
        cpu_seconds=cpu_total,
        wall_seconds=wall,
        failures=failures,
        compute_per_cpu=compute_per_cpu,
        headroom=headroom,
        memory_limit_bytes=memory_limit_bytes(),
        memory_per_sandbox=memory_bytes,
    )
