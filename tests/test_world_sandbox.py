"""Agents' code in real sandboxes, through the world's invoke path: prices paid, real CPU
time charged as compute (into debt if need be), failures as results and events, the world
running on, and a container's CPU quota following its agent's compute rate."""

from __future__ import annotations

import anyio
import pytest

from engine.actions import Sleep, Write
from engine.brains import register
from engine.brains.base import Brain
from engine.clock import VirtualClock
from engine.config import parse_world
from engine.world import World

pytestmark = pytest.mark.anyio


@register
class Idle(Brain):
    """Sleeps: the test drives the world through the operator's and agents' invoke path."""

    name = "test_idle"

    def decide(self, view):
        return Sleep(seconds=1e9)


SPIN = "def run(seconds=0.3):\n    import time\n    t = time.process_time()\n    while time.process_time() - t < seconds:\n        pass\n    return 'spun'\n"
HOG = "def run():\n    hog = []\n    while True:\n        hog.append(bytearray(16 * 1024 * 1024))\n"
ADD = "def run(a=1, b=2):\n    return a + b\n"


def world_config(name: str):
    return parse_world({
        "name": name,
        "seed": 1,
        "compute": {"compute_per_cpu": 10.0},
        "sandbox": {"memory_mb": 64, "timeout": 5.0},
        "agents": [{"brain": "test_idle", "count": 2, "scrip": 50, "rate": 5.0, "capacity": 5.0}],
    })


async def open_backend(backend: str, world: World, docker_client=None):
    if backend == "docker":
        from containers.docker_backend import DockerSandbox

        sandbox = DockerSandbox(world.config.name, world.report_sandbox, client=docker_client)
    else:
        from containers.subprocess_backend import SubprocessSandbox

        sandbox = SubprocessSandbox(world.report_sandbox)
    await sandbox.open()
    return sandbox, f"{backend} sandbox (test)"


@pytest.fixture(params=[pytest.param("docker", marks=pytest.mark.docker), "subprocess"])
def backend(request):
    if request.param == "docker":
        request.getfixturevalue("docker_client")
    return request.param


@pytest.fixture
def docker_client():
    from containers.choose import probe_daemon_blocking
    from containers.images import AGENT_IMAGE, build_agent_image, image_state

    probe = probe_daemon_blocking(timeout=3.0)
    if probe.client is None:
        pytest.skip(f"no Docker daemon at {probe.where}: {probe.detail}")
    if image_state(probe.client, AGENT_IMAGE) != "current":
        build_agent_image(probe.client)
    yield probe.client
    probe.client.close()


async def running_world(backend: str, request) -> World:
    client = request.getfixturevalue("docker_client") if backend == "docker" else None
    name = f"t-{request.node.name[-20:].replace('[', '-').replace(']', '')}".lower()
    world = World(world_config(name), clock=VirtualClock(),
                  sandbox_factory=lambda w: open_backend(backend, w, client))
    return world


def write_code(world: World, owner: str, source: str) -> str:
    result = world.waist.perform(owner, Write(source, kind="code"), world.clock.now())
    assert result.ok, result.error
    return result.value["artifact_id"]


async def test_code_runs_and_its_cpu_time_is_charged_as_compute(backend, request):
    world = await running_world(backend, request)
    async with anyio.create_task_group() as tg:
        tg.start_soon(world.run)
        while world.sandbox is None:
            await anyio.lowlevel.checkpoint()
        code = write_code(world, "a001", SPIN)
        assert world.invoke("rights", "set_price", principal="a001", artifact=code, price=3).ok
        # The test is not an engine task: with every agent asleep, virtual time would jump
        # (and refill buckets) while the sandbox works. A paused world's time stands still.
        assert world.invoke("world", "pause").ok
        buyer = world.ledger.buckets["a002"]
        before_compute = buyer.peek(world.clock.now())
        before = (world.ledger.scrip["a001"], world.ledger.scrip["a002"])
        result = await world.invoke_async(code, "run", principal="a002", seconds=0.3)
        assert result.ok, result.error
        assert result.value["value"] == "spun"
        cpu = result.value["cpu_seconds"]
        assert 0.25 <= cpu <= 1.0, cpu
        # The price went to the owner; the real CPU time came out of the caller's bucket:
        # 0.3 s * 10 compute per CPU-second = about 3 units, more than the 5-unit bucket's
        # margin after the invoke cost, so the caller may now be in debt.
        assert (world.ledger.scrip["a001"], world.ledger.scrip["a002"]) == (before[0] + 3, before[1] - 3)
        charged = before_compute - buyer.peek(world.clock.now())
        assert charged == pytest.approx(cpu * 10 + world.waist.costs["invoke"], abs=1e-6)
        assert world.mechanisms["code_run"] == 1
        assert all(world.invariants().values()), world.invariants()
        tg.cancel_scope.cancel()


async def test_memory_hog_fails_as_a_result_and_an_event_and_the_world_goes_on(backend, request):
    world = await running_world(backend, request)
    incidents = world.bus.subscribe(["sandbox_incident"])
    async with anyio.create_task_group() as tg:
        tg.start_soon(world.run)
        while world.sandbox is None:
            await anyio.lowlevel.checkpoint()
        hog = write_code(world, "a001", HOG)
        add = write_code(world, "a001", ADD)
        before = dict(world.ledger.scrip)
        result = await world.invoke_async(hog, "run", principal="a001")
        assert not result.ok and result.code == "oom", result
        assert "failed (oom)" in result.error
        assert [e.failure for e in incidents.drain()] == ["oom"]
        # The replaced sandbox answers the next call, and no scrip moved on the failure.
        again = await world.invoke_async(add, "run", principal="a001", a=20, b=22)
        assert again.ok and again.value["value"] == 42
        assert world.ledger.scrip == before
        assert all(world.invariants().values())
        tg.cancel_scope.cancel()


@pytest.mark.docker
async def test_rate_transfer_changes_the_containers_cpu_quota(docker_client, request):
    world = await running_world("docker", request)
    async with anyio.create_task_group() as tg:
        tg.start_soon(world.run)
        while world.sandbox is None:
            await anyio.lowlevel.checkpoint()
        add = write_code(world, "a001", ADD)
        assert (await world.invoke_async(add, "run", principal="a001")).ok  # starts its container

        def quota() -> float:
            c = docker_client.containers.list(filters={"label": ["ecology.agent=a001", f"ecology.world={world.config.name}"]})[0]
            c.reload()
            hc = c.attrs["HostConfig"]
            return hc["CpuQuota"] / hc["CpuPeriod"] if hc.get("CpuQuota") else hc["NanoCpus"] / 1e9

        assert quota() == pytest.approx(0.5, rel=0.01)  # rate 5 / 10 compute per CPU
        assert world.invoke("ledger", "transfer_rate", principal="a001", to="a002", amount=2.5).ok
        for _ in range(200):  # the update is a Docker API call in the background
            if abs(quota() - 0.25) < 0.01:
                break
            await anyio.to_thread.run_sync(lambda: None)
        assert quota() == pytest.approx(0.25, rel=0.01)
        tg.cancel_scope.cancel()


async def test_without_a_sandbox_running_code_is_refused_with_the_reason():
    world = World(world_config("nosandbox"), clock=VirtualClock())
    code = write_code(world, "a001", ADD)
    before = dict(world.ledger.scrip)
    result = await world.invoke_async(code, "run", principal="a002")
    assert not result.ok and "needs a sandbox" in result.error
    assert world.ledger.scrip == before
