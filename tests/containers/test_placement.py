"""Agents' sandboxes spread over several Docker daemons (SPEC §8, issue 7): placement by free
capacity, each container on the daemon its stats name, a daemon killed mid-run (its agents'
sandboxes move and their next calls succeed; the world runs on), the daemon back for new
agents. The docker tests use a second dockerd on this machine (.ci/second-daemon.sh: its own
socket and data root), started here when it is not running, and stopped again if so."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
import requests.exceptions
import urllib3.exceptions

from containers.base import SandboxError
from containers.choose import choose_sandbox
from containers.docker_backend import AGENT_LABEL, WORLD_LABEL, remove_world_containers
from containers.endpoints import (
    HostFacts,
    SSHTunnel,
    connection_detail,
    is_connection_error,
)
from containers.multihost import MultiHostSandbox
from containers.placement import Host, headroom
from containers.subprocess_backend import SubprocessSandbox
from engine.sandbox import SandboxIncident, SandboxLimits, SandboxStats

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / ".ci" / "second-daemon.sh"
FIRST = "unix:///var/run/docker.sock"
SECOND_SOCK = os.environ.get("ECOLOGY_DOCKER2_SOCK", "/run/ecology-docker2.sock")
SECOND = f"unix://{SECOND_SOCK}"
SECOND_PIDFILE = os.environ.get("ECOLOGY_DOCKER2_PIDFILE", "/run/ecology-docker2.pid")
MiB = 2**20

ADD = "def run(a=1, b=2):\n    return a + b\n"
SLEEP = "def run(seconds=3.0):\n    import time\n    time.sleep(seconds)\n    return 'slept'\n"


# -- placement arithmetic and error classification (no daemon needed) ----------------------


class FakeHostSandbox:
    """Stands in for a connected host's sandbox where only ranking is tested."""


def fake_hosts(sandbox: MultiHostSandbox, *capacity: tuple[float, int]) -> None:
    for host, (ncpu, memory) in zip(sandbox.hosts, capacity, strict=True):
        host.up = True
        host.sandbox = FakeHostSandbox()  # type: ignore[assignment]
        host.facts = HostFacts(ncpu, memory, "test", "1.41", host.endpoint)


def reserve(sandbox: MultiHostSandbox, agent: str, host: Host, limits: SandboxLimits) -> None:
    sandbox.book.limits[agent] = limits
    sandbox.book.assign(agent, host)


def test_headroom_is_how_many_more_such_containers_fit() -> None:
    small = SandboxLimits(cpus=0.5, memory_bytes=128 * MiB)
    assert headroom(4, 1024 * MiB, 0, 0, small) == 8  # memory-bound: 1024/128 < 4/0.5
    assert headroom(2, 8192 * MiB, 0, 0, small) == 4  # cpu-bound
    assert headroom(2, 8192 * MiB, 1.5, 0, small) == 1
    assert headroom(2, 8192 * MiB, 2.5, 0, small) == -1  # overcommitted
    # An agent that sold all its rate still counts with the smallest quota.
    assert headroom(1, 8192 * MiB, 0, 0, SandboxLimits(cpus=0, memory_bytes=MiB)) == 100


def test_ranking_prefers_free_capacity_then_endpoint_order() -> None:
    sandbox = MultiHostSandbox("w", hosts=["unix:///a.sock", "tcp://b:2375", "ssh://c"])
    a, b, c = sandbox.hosts
    fake_hosts(sandbox, (2, 4096 * MiB), (2, 4096 * MiB), (8, 128 * MiB))
    small = SandboxLimits(cpus=0.25, memory_bytes=64 * MiB)
    # c has the most CPUs but room for only 2 such containers in memory; a and b (8 each)
    # tie: the one listed first wins.
    assert sandbox.rank(small) == [a, b, c]
    reserve(sandbox, "big", a, SandboxLimits(cpus=1.5, memory_bytes=64 * MiB))
    assert sandbox.rank(small) == [b, a, c]  # a has 0.5 CPU left: room for 2; b: 8; c: 2
    for i in range(6):
        reserve(sandbox, f"s{i}", b, small)
    assert sandbox.rank(small) == [a, b, c]  # 2, 2 and 2: endpoint order
    a.up = False
    assert sandbox.rank(small) == [b, c]  # a down host takes no placement
    assert sandbox.rank(small, exclude=[b]) == [c]


def test_connection_errors_are_told_from_answers() -> None:
    refused = requests.exceptions.ConnectionError(
        urllib3.exceptions.ProtocolError(
            "Connection aborted.", ConnectionRefusedError(111, "Connection refused")
        )
    )
    assert is_connection_error(refused)
    assert connection_detail(refused) == "Connection refused"
    assert is_connection_error(FileNotFoundError(2, "No such file or directory"))
    wrapped = RuntimeError("inspect failed")
    wrapped.__cause__ = ConnectionResetError(104, "Connection reset by peer")
    assert is_connection_error(wrapped) and connection_detail(wrapped) == "Connection reset by peer"
    import docker.errors

    assert not is_connection_error(docker.errors.APIError("409 Conflict"))
    assert not is_connection_error(ValueError("bad"))


def test_ssh_endpoints_are_forwarded_to_a_local_socket() -> None:
    tunnel = SSHTunnel("ssh://ops@build-3:2222/run/user/1000/docker.sock")
    assert (tunnel.target, tunnel.port, tunnel.remote) == (
        "ops@build-3",
        2222,
        "/run/user/1000/docker.sock",
    )
    assert tunnel.url.startswith("unix://") and tunnel.url.endswith(".sock")
    plain = SSHTunnel("ssh://build-4")
    assert (plain.target, plain.port, plain.remote) == ("build-4", None, "/var/run/docker.sock")


async def test_no_host_answers_falls_back_to_subprocesses_and_says_why(
    tmp_path: Path, world_id: str
) -> None:
    hosts = [f"unix://{tmp_path}/a.sock", f"unix://{tmp_path}/b.sock"]
    sandbox = MultiHostSandbox(world_id, hosts=hosts, probe_timeout=1.0)
    with pytest.raises(SandboxError, match="no Docker host can be used") as caught:
        await sandbox.open()
    assert hosts[0] in str(caught.value) and hosts[1] in str(caught.value)
    choice = await choose_sandbox(world_id, hosts=hosts)
    try:
        assert isinstance(choice.sandbox, SubprocessSandbox)
        assert "no Docker host can be used" in choice.reason and hosts[1] in choice.reason
    finally:
        await choice.sandbox.close()
    with pytest.raises(RuntimeError, match="cannot use the docker sandbox"):
        await choose_sandbox(world_id, prefer="docker", hosts=hosts)


# -- two real daemons -------------------------------------------------------------------------


def second_answers() -> bool:
    import docker

    try:
        client = docker.DockerClient(base_url=SECOND, timeout=3)
    except Exception:  # noqa: BLE001
        return False
    try:
        client.ping()
        return True
    except Exception:  # noqa: BLE001
        return False
    finally:
        client.close()


def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=240, check=False
    )


def in_flight(sandbox: MultiHostSandbox, agent_id: str) -> bool:
    """A call of this agent is running in its container (its slot is held)."""
    host = sandbox.book.where.get(agent_id)
    slot = host.sandbox._slots.get(agent_id) if host is not None and host.sandbox is not None else None
    return slot is not None and slot.lock.locked() and slot.handle is not None


def second_daemon_pid() -> int:
    return int(Path(SECOND_PIDFILE).read_text().strip())


@pytest.fixture(scope="module")
def second_daemon(docker_client: Any) -> Any:
    """The endpoint of a second dockerd with the agent image; started (and stopped) here
    unless it already runs; the tests skip, saying why, only if it cannot be started."""
    started_here = False
    if not second_answers():
        done = run_script()
        if done.returncode != 0:
            pytest.skip(f"cannot start a second Docker daemon: {done.stderr.strip()[-600:]}")
        started_here = True
    else:
        done = run_script()  # running already: make sure it has the current agent image
        assert done.returncode == 0, done.stderr
    yield SECOND
    if started_here:
        run_script("stop")


def remove_everywhere(world: str) -> None:
    """Whatever a failing test left of a world, on both daemons."""
    for endpoint in (FIRST, SECOND):
        try:
            client = client_of(endpoint)
        except Exception:  # noqa: BLE001, S112 - a daemon that is gone has no containers
            continue
        try:
            remove_world_containers(client, world)
        except Exception:  # noqa: BLE001, S110
            pass
        finally:
            client.close()


@pytest.fixture
def world_on_both(world_id: str) -> Any:
    yield world_id
    remove_everywhere(world_id)


def client_of(endpoint: str) -> Any:
    import docker

    return docker.DockerClient(base_url=endpoint, timeout=30)


def containers_of(endpoint: str, world: str, agent: str | None = None) -> list[Any]:
    client = client_of(endpoint)
    try:
        label = [f"{WORLD_LABEL}={world}"] + ([f"{AGENT_LABEL}={agent}"] if agent else [])
        return client.containers.list(filters={"label": label, "status": "running"})
    finally:
        client.close()


def last_stats(items: list[Any], agent: str) -> SandboxStats:
    return [i for i in items if isinstance(i, SandboxStats) and i.agent_id == agent][-1]


def assert_on_named_daemon(world: str, agent: str, host: str) -> None:
    """The agent's one container runs on the daemon its stats name, and on no other."""
    here = containers_of(host, world, agent)
    assert len(here) == 1, (agent, host, here)
    for other in (FIRST, SECOND):
        if other != host:
            assert containers_of(other, world, agent) == [], (agent, other)


@pytest.mark.docker
async def test_agents_spread_by_free_capacity_each_on_the_daemon_its_stats_name(
    second_daemon: str, world_on_both: str, recorder: Any
) -> None:
    world_id = world_on_both
    sandbox = MultiHostSandbox(world_id, recorder, hosts=[FIRST, second_daemon])
    try:
        await sandbox.open()
        assert [h["up"] for h in sandbox.hosts_status()] == [True, True], sandbox.describe()
        big = SandboxLimits(cpus=1.5, memory_bytes=64 * MiB)
        small = SandboxLimits(cpus=0.25, memory_bytes=64 * MiB)
        await sandbox.start("big", big)  # both empty: a tie, so the first endpoint
        for name in ("s1", "s2", "s3"):
            await sandbox.start(name, small)
        # The second daemon has 1.5 CPUs more free than the first (both report this machine's
        # NCPU), so all three small agents fit better there; round-robin would alternate.
        assert sandbox.placement() == {"big": FIRST, "s1": SECOND, "s2": SECOND, "s3": SECOND}
        status = {h["endpoint"]: h for h in sandbox.hosts_status()}
        assert status[FIRST]["reserved_cpus"] == 1.5 and status[SECOND]["reserved_cpus"] == 0.75
        for agent, host in sandbox.placement().items():
            assert last_stats(recorder.items, agent).host == host
            assert_on_named_daemon(world_id, agent, host)
            result = await sandbox.run(agent, ADD, {"a": 40}, 5.0)
            assert result.ok and result.value == 42, result
        # The monitor's readings name the host too.
        from containers.stats import StatsMonitor

        readings = {s.agent_id: s for s in await StatsMonitor(sandbox, None).sample()}
        assert {a: s.host for a, s in readings.items()} == sandbox.placement()
        assert all(s.status == "running" and s.memory_bytes > 0 for s in readings.values())
    finally:
        await sandbox.close()
    assert containers_of(FIRST, world_id) == [] and containers_of(SECOND, world_id) == []


@pytest.mark.docker
async def test_a_killed_daemon_moves_its_agents_the_world_runs_on_and_it_comes_back(
    second_daemon: str, request: pytest.FixtureRequest
) -> None:
    from engine.actions import Sleep, Write
    from engine.brains import register
    from engine.brains.base import Brain
    from engine.clock import VirtualClock
    from engine.config import parse_world
    from engine.world import World

    @register
    class Idle(Brain):
        name = "test_placement_idle"

        def decide(self, view: Any) -> Any:
            return Sleep(seconds=1e9)

    name = f"t-placement-{os.getpid()}-{int(time.time()) % 100000}"
    config = parse_world({
        "name": name,
        "seed": 1,
        "compute": {"compute_per_cpu": 10.0},
        "sandbox": {"memory_mb": 64, "timeout": 10.0, "hosts": [FIRST, second_daemon]},
        "agents": [{"brain": "test_placement_idle", "count": 6, "scrip": 50, "rate": 5.0, "capacity": 50.0}],
    })  # fmt: skip
    reasons: list[str] = []

    async def open_sandbox(world: World) -> tuple[Any, str]:
        choice = await choose_sandbox(
            world.config.name, reporter=world.report_sandbox, prefer="docker",
            hosts=world.config.sandbox.hosts,
        )  # fmt: skip
        reasons.append(choice.reason)
        return choice.sandbox, choice.reason

    world = World(config, clock=VirtualClock(), sandbox_factory=open_sandbox)
    incidents = world.bus.subscribe(["sandbox_incident"])
    restarted = False
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(world.run)
            with anyio.fail_after(30):
                while world.sandbox is None:  # the factory opens it (real daemon I/O in threads)
                    await anyio.lowlevel.checkpoint()
            sandbox = world.sandbox
            assert isinstance(sandbox, MultiHostSandbox), reasons
            assert FIRST in reasons[0] and second_daemon in reasons[0]
            # The test is not an engine task: a paused world's virtual time stands still.
            assert world.invoke("world", "pause").ok
            written = world.waist.perform("a001", Write(ADD, kind="code"), world.clock.now())
            add = written.value["artifact_id"]
            written = world.waist.perform("a001", Write(SLEEP, kind="code"), world.clock.now())
            slow = written.value["artifact_id"]

            # 1. Equal agents spread over the two daemons (ties: the first endpoint).
            for i, agent in enumerate(["a001", "a002", "a003", "a004"]):
                result = await world.invoke_async(add, "run", principal=agent, a=i, b=1)
                assert result.ok and result.value["value"] == i + 1, result
            placed = {a: world.sandbox_stats[a].host for a in ["a001", "a002", "a003", "a004"]}
            assert placed == {"a001": FIRST, "a002": SECOND, "a003": FIRST, "a004": SECOND}
            for agent, host in placed.items():
                assert_on_named_daemon(name, agent, host)

            # 2. The second daemon is killed while a002's call runs there.
            outcome: dict[str, Any] = {}

            async def slow_call() -> None:
                outcome["result"] = await world.invoke_async(
                    slow, "run", principal="a002", seconds=3.0
                )

            killed_at = 0.0
            async with anyio.create_task_group() as calls:
                calls.start_soon(slow_call)
                with anyio.fail_after(30):  # kill it once a002's call holds its sandbox there
                    while not in_flight(world.sandbox, "a002"):
                        await anyio.lowlevel.checkpoint()
                os.kill(second_daemon_pid(), signal.SIGKILL)
                restarted = True  # from here on, the daemon must be started again
                killed_at = time.monotonic()
            failed = outcome["result"]
            assert time.monotonic() - killed_at < 10
            assert not failed.ok and failed.code == "sandbox", failed
            assert f"the Docker host {SECOND} was lost during the call" in failed.error
            assert f"started again on {FIRST}" in failed.error
            # Its agents got an incident each, and their next calls succeed on the first daemon.
            for agent in ("a002", "a004"):
                result = await world.invoke_async(add, "run", principal=agent, a=20, b=22)
                assert result.ok and result.value["value"] == 42, result
                assert world.sandbox_stats[agent].host == FIRST
                assert sandbox.host_of(agent) == FIRST
                assert containers_of(FIRST, name, agent) != []
            moved = [e for e in incidents.drain() if "was lost" in e.detail]
            assert sorted(e.agent_id for e in moved) == ["a002", "a004"], moved
            assert all(SECOND in e.detail and e.failure == "sandbox" for e in moved)
            down = {h["endpoint"]: h for h in sandbox.hosts_status()}[SECOND]
            assert not down["up"] and down["losses"] == 1
            # A new agent meanwhile goes to the daemon that is left.
            result = await world.invoke_async(add, "run", principal="a005")
            assert result.ok, result
            assert sandbox.host_of("a005") == FIRST
            # The world runs on: its books balance and its tasks are alive.
            assert world.running and all(world.invariants().values()), world.invariants()

            # 3. The daemon comes back and takes new agents again (the least loaded now).
            done = await anyio.to_thread.run_sync(run_script)
            assert done.returncode == 0, done.stderr
            back = await sandbox.recheck()
            # The watcher's own recheck may have found it first (a restart slowed by load).
            assert back == [SECOND] or {h["endpoint"]: h for h in sandbox.hosts_status()}[SECOND]["up"]
            result = await world.invoke_async(add, "run", principal="a006", a=2, b=3)
            assert result.ok and result.value["value"] == 5, result
            assert world.sandbox_stats["a006"].host == SECOND
            assert_on_named_daemon(name, "a006", SECOND)
            for agent in ("a001", "a002", "a003", "a004", "a005"):
                assert sandbox.host_of(agent) == FIRST  # moved agents stay where they are

            # The world resumes, and time goes on.
            before = world.clock.now()
            assert world.invoke("world", "resume").ok
            with anyio.fail_after(10):
                while world.clock.now() <= before:
                    await anyio.lowlevel.checkpoint()
            assert world.running and all(world.invariants().values())
            tg.cancel_scope.cancel()
        # The world closed its sandbox: nothing of it is left on either daemon.
        assert containers_of(FIRST, name) == [] and containers_of(SECOND, name) == []
    finally:
        if restarted and not second_answers():
            run_script()  # leave the second daemon as we found it: running
        remove_everywhere(name)


@pytest.mark.docker
async def test_health_ping_finds_an_idle_lost_daemon(
    second_daemon: str, world_on_both: str, recorder: Any
) -> None:
    """A daemon that dies while its agents are idle is found by the monitor's health ping, and
    its agents are moved before their next call; it is back after a recheck."""
    sandbox = MultiHostSandbox(world_on_both, recorder, hosts=[second_daemon, FIRST])
    try:
        await sandbox.open()
        limits = SandboxLimits(cpus=0.25, memory_bytes=64 * MiB)
        await sandbox.start("x1", limits)
        assert sandbox.host_of("x1") == SECOND
        os.kill(second_daemon_pid(), signal.SIGKILL)
        with anyio.fail_after(10):
            while not await sandbox.check_health():  # each try is a real ping of both daemons
                await anyio.lowlevel.checkpoint()
        await sandbox.migration.move_displaced()
        assert sandbox.host_of("x1") == FIRST
        assert [i.agent_id for i in recorder.incidents if isinstance(i, SandboxIncident)] == ["x1"]
        result = await sandbox.run("x1", ADD, {}, 5.0)
        assert result.ok and result.value == 3
        done = await anyio.to_thread.run_sync(run_script)
        assert done.returncode == 0, done.stderr
        assert await sandbox.recheck() == [SECOND]
        await sandbox.start("x2", limits)
        assert sandbox.host_of("x2") == SECOND
    finally:
        await sandbox.close()
        if not second_answers():
            run_script()
