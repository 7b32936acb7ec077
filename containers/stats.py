"""The stats monitor: CPU, memory, pids and status of every agent's sandbox, as SandboxStats.

Cheap by design: containers are read from their cgroup files (v1 or v2, cgroupfs or systemd
layout), runner processes from /proc, all in one worker thread per sample; the daemon's stats
API (seconds per call) is only a fallback for containers whose cgroup is not visible here.
Restarts and OOM kills come from the backend, which replaces runners and so sees them all.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import anyio
import anyio.to_thread

from containers.procfs import CLOCK_TICKS, read_tree
from engine.sandbox import Reporter, SandboxLimits, SandboxStats

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
UNLIMITED = 1 << 60  # v1 reports "no limit" as a huge number


@dataclass(frozen=True, slots=True)
class StatTarget:
    """What the stats monitor needs to read one agent's sandbox, without touching the slot."""

    agent_id: str
    backend: str
    kind: Literal["container", "process"]
    ident: str | int | None
    status: str
    limits: SandboxLimits
    restarts: int
    oom_kills: int
    host: str = "local"


class Monitored(Protocol):
    """A sandbox the monitor samples: it lists its agents' runners (a Docker sandbox may also
    offer `api_stats(container_id)`, the daemon's figures, for a cgroup not visible here)."""

    def stat_targets(self) -> list[StatTarget]: ...


@dataclass(frozen=True, slots=True)
class Reading:
    """Raw counters of one sandbox at one instant."""

    cpu_ns: int
    memory_bytes: int
    memory_limit_bytes: int  # 0 when unlimited or unknown
    pids: int
    source: str


def _read_int(path: Path) -> int:
    text = path.read_text().strip()
    return 0 if text == "max" else int(text)


def _read_keyed(path: Path, *keys: str) -> dict[str, int]:
    found: dict[str, int] = {}
    with open(path) as f:
        for line in f:
            name, _, value = line.partition(" ")
            if name in keys:
                found[name] = int(value)
    return found


@dataclass(frozen=True, slots=True)
class CgroupFiles:
    """Where one container's counters live."""

    version: int
    cpu: Path
    memory: Path
    pids: Path

    @classmethod
    def find(cls, container_id: str, root: Path = CGROUP_ROOT) -> CgroupFiles | None:
        if (root / "cgroup.controllers").exists():  # unified (v2) hierarchy
            for rel in (f"system.slice/docker-{container_id}.scope", f"docker/{container_id}"):
                path = root / rel
                if (path / "cpu.stat").exists():
                    return cls(2, path, path, path)
            return None
        dirs: dict[str, Path] = {}
        for controller, probe in (
            ("cpuacct", "cpuacct.usage"),
            ("memory", "memory.usage_in_bytes"),
            ("pids", "pids.current"),
        ):
            for mount in (controller, "cpu,cpuacct" if controller == "cpuacct" else controller):
                for rel in (f"docker/{container_id}", f"system.slice/docker-{container_id}.scope"):
                    path = root / mount / rel
                    if (path / probe).exists():
                        dirs[controller] = path
                        break
                if controller in dirs:
                    break
        if set(dirs) != {"cpuacct", "memory", "pids"}:
            return None
        return cls(1, dirs["cpuacct"], dirs["memory"], dirs["pids"])

    # -- what the meter of one call reads (containers/meter.py) ------------------------------

    def cpu_ns(self) -> int:
        """CPU time of every process the container ever ran, in ns."""
        if self.version == 2:
            return _read_keyed(self.cpu / "cpu.stat", "usage_usec").get("usage_usec", 0) * 1000
        return _read_int(self.cpu / "cpuacct.usage")

    def current_bytes(self) -> int:
        name = "memory.current" if self.version == 2 else "memory.usage_in_bytes"
        try:
            return _read_int(self.memory / name)
        except (OSError, ValueError):
            return 0

    def reset_peak(self) -> bool:
        """Start the memory peak afresh (v1: needs write access, as root on the host)."""
        if self.version == 2:
            return False  # memory.peak resets per open file only: current usage is shown
        try:
            (self.memory / "memory.max_usage_in_bytes").write_text("0")
            return True
        except OSError:
            return False

    def peak_bytes(self) -> int:
        try:
            return _read_int(self.memory / "memory.max_usage_in_bytes")
        except (OSError, ValueError):
            return self.current_bytes()

    def read(self) -> Reading:
        if self.version == 2:
            cpu_ns = _read_keyed(self.cpu / "cpu.stat", "usage_usec").get("usage_usec", 0) * 1000
            current = _read_int(self.memory / "memory.current")
            inactive = _read_keyed(self.memory / "memory.stat", "inactive_file").get(
                "inactive_file", 0
            )
            limit = _read_int(self.memory / "memory.max")
        else:
            cpu_ns = _read_int(self.cpu / "cpuacct.usage")
            current = _read_int(self.memory / "memory.usage_in_bytes")
            inactive = _read_keyed(self.memory / "memory.stat", "total_inactive_file").get(
                "total_inactive_file", 0
            )
            limit = _read_int(self.memory / "memory.limit_in_bytes")
        pids = _read_int(self.pids / "pids.current")
        return Reading(
            cpu_ns=cpu_ns,
            # What `docker stats` shows: page cache that could be dropped does not count.
            memory_bytes=max(0, current - inactive),
            memory_limit_bytes=0 if limit >= UNLIMITED else limit,
            pids=pids,
            source=f"cgroup v{self.version}",
        )


def read_process_tree(pid: int) -> Reading | None:
    """A runner process and everything it forked, from /proc."""
    tree = read_tree(pid)
    if tree is None:
        return None
    return Reading(
        cpu_ns=tree.cpu_ticks * 1_000_000_000 // CLOCK_TICKS,
        memory_bytes=tree.rss_bytes,
        memory_limit_bytes=0,
        pids=tree.processes,
        source="proc",
    )


def reading_from_api(stats: dict[str, Any]) -> Reading:
    """A reading from the daemon's stats API (the fallback when no cgroup is visible)."""
    memory = stats.get("memory_stats") or {}
    inner = memory.get("stats") or {}
    inactive = inner.get("inactive_file", inner.get("total_inactive_file", 0))
    limit = int(memory.get("limit") or 0)
    return Reading(
        cpu_ns=int(((stats.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage", 0)),
        memory_bytes=max(0, int(memory.get("usage") or 0) - int(inactive)),
        memory_limit_bytes=0 if limit >= UNLIMITED else limit,
        pids=int((stats.get("pids_stats") or {}).get("current") or 0),
        source="api",
    )


class StatsMonitor:
    """Samples every sandbox of one backend and publishes SandboxStats through the reporter.

    Run `await monitor.run()` as a task of the world's task group (it samples every
    `interval` seconds until cancelled) or call `await monitor.sample()` yourself.
    """

    def __init__(self, sandbox: Monitored, reporter: Reporter | None, interval: float = 1.0) -> None:
        self.sandbox = sandbox
        self.reporter = reporter
        self.interval = interval
        self._cgroups: dict[str, CgroupFiles | None] = {}
        self._previous: dict[tuple[str, str | int], tuple[float, int]] = {}
        self.samples = 0

    async def run(self) -> None:
        next_at = anyio.current_time()
        while True:
            await self.sample()
            next_at += self.interval
            now = anyio.current_time()
            next_at = max(next_at, now)  # fell behind (a slow fallback read): no burst to catch up
            await anyio.sleep(next_at - now)

    async def sample(self) -> list[SandboxStats]:
        targets: list[StatTarget] = self.sandbox.stat_targets()
        readings = await anyio.to_thread.run_sync(self._read_all, targets)
        stats = [self._to_stats(t, r, at) for t, (r, at) in zip(targets, readings, strict=True)]
        live = {(t.agent_id, t.ident) for t in targets}
        for gone in [key for key in self._previous if key not in live]:
            del self._previous[gone]
        idents = {str(t.ident) for t in targets}
        for stale in [cid for cid in self._cgroups if cid not in idents]:
            del self._cgroups[stale]
        self.samples += 1
        if self.reporter is not None:
            for item in stats:
                try:
                    self.reporter(item)
                except Exception:
                    log.exception("stats reporter failed")
        return stats

    # -- in the worker thread -------------------------------------------------------------

    def _read_all(self, targets: list[StatTarget]) -> list[tuple[Reading | None, float]]:
        return [(self._read(target), time.monotonic()) for target in targets]

    def _read(self, target: StatTarget) -> Reading | None:
        if target.ident is None or target.status not in ("running", "starting"):
            return None
        try:
            if target.kind == "process":
                return read_process_tree(int(target.ident))
            return self._read_container(str(target.ident))
        except (OSError, ValueError) as exc:
            log.debug("cannot read stats of %s: %s", target.agent_id, exc)
            self._cgroups.pop(str(target.ident), None)
            return None

    def _read_container(self, container_id: str) -> Reading | None:
        if container_id not in self._cgroups:
            self._cgroups[container_id] = CgroupFiles.find(container_id)
        files = self._cgroups[container_id]
        if files is not None:
            return files.read()
        api_stats: Callable[[str], dict[str, Any] | None] | None = getattr(
            self.sandbox, "api_stats", None
        )
        if api_stats is None:
            return None
        raw = api_stats(container_id)
        return reading_from_api(raw) if raw else None

    # -- back on the loop -----------------------------------------------------------------

    def _to_stats(self, target: StatTarget, reading: Reading | None, at: float) -> SandboxStats:
        status = target.status
        if reading is None:
            if status == "running":
                status = "gone"  # its cgroup or process vanished between calls
            return SandboxStats(
                agent_id=target.agent_id,
                backend=target.backend,
                status=status,
                memory_limit_bytes=target.limits.memory_bytes,
                restarts=target.restarts,
                oom_kills=target.oom_kills,
                cpus=target.limits.cpus,
                host=target.host,
            )
        assert target.ident is not None
        key = (target.agent_id, target.ident)
        previous = self._previous.get(key)
        self._previous[key] = (at, reading.cpu_ns)
        cpu_percent = 0.0
        if previous is not None and at > previous[0]:
            cpu_percent = max(0.0, (reading.cpu_ns - previous[1]) / 1e9 / (at - previous[0]) * 100)
        ident = target.ident
        return SandboxStats(
            agent_id=target.agent_id,
            backend=target.backend,
            status=status,
            cpu_percent=round(cpu_percent, 2),
            memory_bytes=reading.memory_bytes,
            memory_limit_bytes=reading.memory_limit_bytes or target.limits.memory_bytes,
            pids=reading.pids,
            restarts=target.restarts,
            oom_kills=target.oom_kills,
            cpus=target.limits.cpus,
            host=target.host,
            extra={
                "cpu_seconds": round(reading.cpu_ns / 1e9, 3),
                "source": reading.source,
                "id": ident[:12] if isinstance(ident, str) else ident,
            },
        )
