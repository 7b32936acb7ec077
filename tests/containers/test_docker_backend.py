"""Docker backend against a real daemon: settings, live CPU quota, labels, orphans, stats."""

from __future__ import annotations

from typing import Any

import anyio
import anyio.to_thread
import pytest

from containers.docker_backend import (
    AGENT_LABEL,
    WORLD_LABEL,
    DockerSandbox,
    container_settings,
)
from containers.images import AGENT_IMAGE
from containers.stats import StatsMonitor
from engine.sandbox import Sandbox, SandboxLimits

pytestmark = [pytest.mark.anyio, pytest.mark.docker]


async def inspect(sandbox: DockerSandbox, agent: str) -> dict[str, Any]:
    container = sandbox.container_of(agent)
    assert container is not None

    def reload() -> dict[str, Any]:
        container.reload()
        return container.attrs

    return await anyio.to_thread.run_sync(reload)


async def test_container_is_locked_down(make_sandbox: Any, world_id: str) -> None:
    sandbox = make_sandbox("docker")
    assert isinstance(sandbox, Sandbox)
    limits = SandboxLimits(cpus=0.5, memory_bytes=96 * 2**20, pids=40, tmpfs_bytes=8 * 2**20)
    async with sandbox:
        await sandbox.start("agent-1", limits)
        attrs = await inspect(sandbox, "agent-1")
    host = attrs["HostConfig"]
    assert host["CpuQuota"] == 50_000 and host["CpuPeriod"] == 100_000
    assert host["Memory"] == host["MemorySwap"] == 96 * 2**20
    assert host["PidsLimit"] == 40
    assert host["NetworkMode"] == "none"
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"]
    # The runner keeps only what it needs to run calls as nobody and kill their leftovers.
    assert sorted(host["CapAdd"]) == ["KILL", "SETGID", "SETUID"]
    assert "no-new-privileges" in host["SecurityOpt"]
    assert "size=8388608" in host["Tmpfs"]["/tmp"]
    assert attrs["Config"]["User"] == "0:0"
    assert not any(v.startswith("OPENAI") for v in attrs["Config"]["Env"])
    assert attrs["Config"]["Labels"][WORLD_LABEL] == world_id
    assert attrs["Config"]["Labels"][AGENT_LABEL] == "agent-1"
    assert attrs["Config"]["Image"] == AGENT_IMAGE


async def test_runner_is_unprivileged(make_sandbox: Any) -> None:
    async with make_sandbox("docker") as sandbox:
        await sandbox.start("a", SandboxLimits())
        result = await sandbox.run(
            "a",
            "import os\n\ndef run():\n"
            "    status = open('/proc/self/status').read().split('\\n')\n"
            "    caps = [l for l in status if l.startswith(('CapEff', 'NoNewPrivs'))]\n"
            "    return [os.getuid(), os.getgid(), caps]\n",
            {},
            10,
        )
    assert result.ok, result
    uid, gid, caps = result.value
    assert (uid, gid) == (65534, 65534)
    assert "CapEff:\t0000000000000000" in caps and "NoNewPrivs:\t1" in caps


async def test_set_cpus_changes_the_quota_live(make_sandbox: Any) -> None:
    async with make_sandbox("docker") as sandbox:
        await sandbox.start("a", SandboxLimits(cpus=0.5))
        before = await inspect(sandbox, "a")
        await sandbox.set_cpus("a", 0.25)
        after = await inspect(sandbox, "a")
        assert after["HostConfig"]["CpuQuota"] == 25_000
        assert after["Id"] == before["Id"]  # the same container, not a new one
        assert sandbox.limits("a").cpus == 0.25
        await sandbox.set_cpus("a", 0)  # no rate left: the smallest quota the kernel takes
        assert (await inspect(sandbox, "a"))["HostConfig"]["CpuQuota"] == 1_000
        await sandbox.set_cpus("a", 1.5)
        assert (await inspect(sandbox, "a"))["HostConfig"]["CpuQuota"] == 150_000
        # A replacement keeps the quota the agent has now.
        spun = await sandbox.run("a", "def run():\n    while True:\n        pass\n", {}, 0.5)
        assert spun.replaced
        replaced = await inspect(sandbox, "a")
        assert replaced["Id"] != before["Id"]
        assert replaced["HostConfig"]["CpuQuota"] == 150_000


async def test_orphans_of_the_world_are_removed_at_open(
    make_sandbox: Any, docker_client: Any, world_id: str
) -> None:
    settings = container_settings(world_id, "ghost", SandboxLimits())

    def leave_orphan() -> str:
        return docker_client.containers.create(AGENT_IMAGE, **settings).id

    orphan = await anyio.to_thread.run_sync(leave_orphan)
    other = await anyio.to_thread.run_sync(
        lambda: docker_client.containers.create(
            AGENT_IMAGE, **container_settings(world_id + "-other", "x", SandboxLimits())
        )
    )
    try:
        async with make_sandbox("docker") as sandbox:
            assert sandbox.orphans_removed == 1
            ids = await anyio.to_thread.run_sync(
                lambda: [c.id for c in docker_client.containers.list(all=True)]
            )
            assert orphan not in ids
            assert other.id in ids  # another world's containers are left alone
    finally:
        await anyio.to_thread.run_sync(lambda: other.remove(force=True))


async def test_close_removes_every_container(
    make_sandbox: Any, docker_client: Any, world_id: str
) -> None:
    sandbox = make_sandbox("docker")
    async with sandbox:
        async with anyio.create_task_group() as tg:
            for n in range(3):
                tg.start_soon(sandbox.start, f"a{n}", SandboxLimits())
        assert sorted(sandbox.agents()) == ["a0", "a1", "a2"]
    left = await anyio.to_thread.run_sync(
        lambda: docker_client.containers.list(
            all=True, filters={"label": f"{WORLD_LABEL}={world_id}"}
        )
    )
    assert left == []


async def test_tmpfs_is_small_and_not_executable(make_sandbox: Any) -> None:
    async with make_sandbox("docker") as sandbox:
        await sandbox.start("a", SandboxLimits(tmpfs_bytes=4 * 2**20))
        # Files of 3 MiB each (one file may not outgrow the tmpfs either: RLIMIT_FSIZE).
        fill = (
            "def run():\n    for n in range(3):\n"
            "        with open(f'/tmp/big{n}', 'wb') as f:\n            f.write(b'x' * (3 << 20))\n"
        )
        result = await sandbox.run("a", fill, {}, 10)
        assert result.failure == "error" and "No space left" in (result.error or "")
        assert (await sandbox.run("a", "def run():\n    return 1\n", {}, 10)).ok


async def test_stats_monitor_reads_cgroups(make_sandbox: Any, recorder: Any) -> None:
    async with make_sandbox("docker") as sandbox:
        await sandbox.start("a", SandboxLimits(cpus=1.0, memory_bytes=64 * 2**20))
        monitor = StatsMonitor(sandbox, recorder, interval=1.0)
        first = await monitor.sample()
        burn = (
            "import time\n\ndef run():\n    end = time.process_time() + 0.3\n"
            "    while time.process_time() < end:\n        pass\n"
        )
        assert (await sandbox.run("a", burn, {}, 10)).ok
        second = await monitor.sample()
    (a1,) = first
    (a2,) = second
    assert a1.backend == "docker" and a1.status == "running"
    assert a2.extra["source"].startswith("cgroup")
    assert a2.memory_limit_bytes == 64 * 2**20
    assert 0 < a2.memory_bytes < 64 * 2**20
    assert a2.pids >= 1
    assert a2.extra["cpu_seconds"] - a1.extra["cpu_seconds"] >= 0.28
    assert a2.cpu_percent > 0
    assert a2 in recorder.stats


async def test_a_killed_container_is_a_sandbox_failure_and_replaced(
    make_sandbox: Any, recorder: Any
) -> None:
    async with make_sandbox("docker") as sandbox:
        await sandbox.start("a", SandboxLimits())
        container = sandbox.container_of("a")
        await anyio.to_thread.run_sync(container.kill)
        result = await sandbox.run("a", "def run():\n    return 1\n", {}, 10)
        assert result.failure == "sandbox" and result.replaced, result
        assert [i.kind for i in recorder.incidents] == ["sandbox"]
        assert (await sandbox.run("a", "def run():\n    return 2\n", {}, 10)).value == 2
