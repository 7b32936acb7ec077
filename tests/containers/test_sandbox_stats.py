"""The stats monitor: cgroup v1/v2 layouts, /proc trees, CPU percent, publishing, its loop."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import anyio
import pytest

from containers.stats import CgroupFiles, StatsMonitor, StatTarget, read_process_tree, reading_from_api
from engine.sandbox import SandboxLimits, SandboxStats

CID = "ab" * 32


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def v1_tree(root: Path, rel: str) -> None:
    write(root / "cpuacct" / rel / "cpuacct.usage", "2500000000\n")
    write(root / "memory" / rel / "memory.usage_in_bytes", "50000000\n")
    write(root / "memory" / rel / "memory.stat", "cache 1\ntotal_inactive_file 10000000\n")
    write(root / "memory" / rel / "memory.limit_in_bytes", "134217728\n")
    write(root / "pids" / rel / "pids.current", "3\n")


def v2_tree(root: Path, rel: str) -> None:
    write(root / "cgroup.controllers", "cpu memory pids\n")
    write(root / rel / "cpu.stat", "usage_usec 1500000\nuser_usec 1000000\n")
    write(root / rel / "memory.current", "30000000\n")
    write(root / rel / "memory.stat", "anon 1\ninactive_file 5000000\n")
    write(root / rel / "memory.max", "max\n")
    write(root / rel / "pids.current", "2\n")


@pytest.mark.parametrize("rel", [f"docker/{CID}", f"system.slice/docker-{CID}.scope"])
def test_cgroup_v1_layouts(tmp_path: Path, rel: str) -> None:
    v1_tree(tmp_path, rel)
    files = CgroupFiles.find(CID, root=tmp_path)
    assert files is not None and files.version == 1
    reading = files.read()
    assert reading.cpu_ns == 2_500_000_000
    assert reading.memory_bytes == 40_000_000
    assert reading.memory_limit_bytes == 134217728
    assert reading.pids == 3 and reading.source == "cgroup v1"


@pytest.mark.parametrize("rel", [f"docker/{CID}", f"system.slice/docker-{CID}.scope"])
def test_cgroup_v2_layouts(tmp_path: Path, rel: str) -> None:
    v2_tree(tmp_path, rel)
    files = CgroupFiles.find(CID, root=tmp_path)
    assert files is not None and files.version == 2
    reading = files.read()
    assert reading.cpu_ns == 1_500_000_000
    assert reading.memory_bytes == 25_000_000
    assert reading.memory_limit_bytes == 0  # "max": unlimited
    assert reading.pids == 2


def test_missing_cgroup_is_none(tmp_path: Path) -> None:
    assert CgroupFiles.find(CID, root=tmp_path) is None
    write(tmp_path / "cgroup.controllers", "")
    assert CgroupFiles.find(CID, root=tmp_path) is None


def test_process_tree_reading() -> None:
    reading = read_process_tree(os.getpid())
    assert reading is not None
    assert reading.cpu_ns > 0 and reading.memory_bytes > 0 and reading.pids >= 1
    assert read_process_tree(2**22 + 1) is None


def test_api_fallback_reading() -> None:
    reading = reading_from_api(
        {
            "cpu_stats": {"cpu_usage": {"total_usage": 7}},
            "memory_stats": {"usage": 100, "limit": 1000, "stats": {"inactive_file": 40}},
            "pids_stats": {"current": 4},
        }
    )
    assert (reading.cpu_ns, reading.memory_bytes, reading.memory_limit_bytes, reading.pids) == (
        7,
        60,
        1000,
        4,
    )


class FakeSandbox:
    """Targets only: the monitor needs nothing else from a sandbox."""

    def __init__(self, targets: list[StatTarget]) -> None:
        self.targets = targets

    def stat_targets(self) -> list[StatTarget]:
        return list(self.targets)


def target(ident: Any, status: str = "running", kind: str = "process") -> StatTarget:
    return StatTarget(
        agent_id="a",
        backend="subprocess",
        kind=kind,  # type: ignore[arg-type]
        ident=ident,
        status=status,
        limits=SandboxLimits(cpus=0.5),
        restarts=2,
        oom_kills=1,
    )


@pytest.mark.anyio
async def test_monitor_publishes_cpu_percent_and_counts() -> None:
    published: list[Any] = []
    monitor = StatsMonitor(FakeSandbox([target(os.getpid())]), published.append)
    (first,) = await monitor.sample()
    end = anyio.current_time() + 0.1
    while anyio.current_time() < end:  # burn a little CPU between the samples
        sum(range(1000))
    (second,) = await monitor.sample()
    assert published == [first, second]
    assert first.cpu_percent == 0.0  # no earlier reading to compare with
    assert second.cpu_percent > 10
    assert second.status == "running" and second.restarts == 2 and second.oom_kills == 1
    assert second.cpus == 0.5 and second.memory_limit_bytes == SandboxLimits().memory_bytes
    assert second.extra["source"] == "proc"


@pytest.mark.anyio
async def test_monitor_reports_vanished_and_replacing_sandboxes() -> None:
    monitor = StatsMonitor(FakeSandbox([target(2**22 + 1), target(None, status="replacing")]), None)
    gone, replacing = await monitor.sample()
    assert gone.status == "gone" and replacing.status == "replacing"


@pytest.mark.anyio
async def test_monitor_loop_samples_until_cancelled() -> None:
    seen: list[SandboxStats] = []
    done = anyio.Event()

    def report(item: SandboxStats) -> None:
        seen.append(item)
        if len(seen) >= 3:
            done.set()

    monitor = StatsMonitor(FakeSandbox([target(os.getpid())]), report, interval=0.02)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(monitor.run)
            await done.wait()
            tg.cancel_scope.cancel()
    assert monitor.samples >= 3


@pytest.mark.anyio
async def test_a_sandbox_runs_its_own_monitor() -> None:
    from containers.subprocess_backend import SubprocessSandbox

    seen: list[SandboxStats] = []
    done = anyio.Event()

    def report(item: Any) -> None:
        if isinstance(item, SandboxStats) and item.extra.get("source") == "proc":
            seen.append(item)
            if len(seen) >= 2:
                done.set()

    async with SubprocessSandbox(report) as sandbox:
        await sandbox.start("a", SandboxLimits())
        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(sandbox.monitor, 0.02)
                await done.wait()
                tg.cancel_scope.cancel()
    assert seen[-1].agent_id == "a" and seen[-1].backend == "subprocess"
