"""SPEC §8 behaviours, on every backend: real limits turn into failed results and incidents,
and the sandbox keeps working afterwards."""

from __future__ import annotations

import os
import socket
from typing import Any

import anyio
import pytest

from containers.subprocess_backend import SubprocessSandbox
from engine.sandbox import SandboxLimits

pytestmark = pytest.mark.anyio

TRIVIAL = "def run(x):\n    return x + 1\n"
MEMORY_HOG = """
def run():
    hoard = []
    for i in range(4096):
        hoard.append(bytes([i % 251]) * (1 << 20))  # touched, not just reserved
    return len(hoard)
"""
SPINNER = "def run():\n    while True:\n        pass\n"
FORK_BOMB = "import os\n\ndef run():\n    while True:\n        os.fork()\n"
CONNECT = """
import socket

def run(port):
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        return "connected"
"""
WRITE = """
def run(path):
    with open(path, "w") as f:
        f.write("escaped")
    return path
"""


async def still_works(sandbox: Any, agent: str = "a") -> None:
    result = await sandbox.run(agent, TRIVIAL, {"x": 41}, 10)
    assert result.ok, result
    assert result.value == 42


def unsafe(sandbox: Any) -> bool:
    """The subprocess backend without root: no uid of its own, so no pids limit, no walls."""
    return type(sandbox) is SubprocessSandbox and not sandbox.separate_users


async def test_trivial_call_returns_value_and_cpu(sandbox: Any) -> None:
    await sandbox.start("a", SandboxLimits())
    result = await sandbox.run("a", TRIVIAL, {"x": 1}, 10)
    assert result.ok and result.value == 2 and result.failure is None
    if isinstance(sandbox, SubprocessSandbox):
        assert 0 <= result.cpu_seconds < 1  # /proc counts in 10 ms ticks: a trivial call may be 0
    else:
        assert 0 < result.cpu_seconds < 1
    assert result.peak_memory_bytes > 0
    assert result.wall_seconds > 0
    assert not result.replaced


async def test_failing_code_is_a_result_and_the_runner_survives(sandbox: Any) -> None:
    await sandbox.start("a", SandboxLimits())
    failed = await sandbox.run("a", "def run():\n    raise ValueError('boom')\n", {}, 10)
    assert not failed.ok and failed.failure == "error" and "boom" in (failed.error or "")
    exited = await sandbox.run("a", "import os\n\ndef run():\n    os._exit(3)\n", {}, 10)
    assert not exited.ok and exited.failure == "error"
    invalid = await sandbox.run("a", "x = 1\n", {}, 10)
    assert invalid.failure == "invalid"
    not_json = await sandbox.run("a", "def run():\n    return object()\n", {}, 10)
    assert not_json.failure == "invalid"
    printed = await sandbox.run("a", "def run():\n    print('noise')\n    return 'quiet'\n", {}, 10)
    assert printed.ok and printed.value == "quiet"
    assert not any(r.replaced for r in (failed, exited, invalid, not_json, printed))
    await still_works(sandbox)


async def test_memory_hog_is_stopped_reported_and_replaced(sandbox: Any, recorder: Any) -> None:
    limits = SandboxLimits(memory_bytes=64 * 1024 * 1024)
    await sandbox.start("a", limits)
    result = await sandbox.run("a", MEMORY_HOG, {}, 30)
    assert not result.ok and result.failure == "oom", result
    assert result.replaced
    assert [i.kind for i in recorder.incidents] == ["oom"]
    assert recorder.incidents[0].agent_id == "a"
    await still_works(sandbox)
    statuses = [s.status for s in recorder.stats if s.agent_id == "a"]
    assert "replacing" in statuses and statuses[-1] == "running"
    assert recorder.stats[-1].restarts == 1 and recorder.stats[-1].oom_kills == 1


async def test_spinner_is_stopped_by_the_timeout(sandbox: Any, recorder: Any) -> None:
    await sandbox.start("a", SandboxLimits(cpus=1.0))
    result = await sandbox.run("a", SPINNER, {}, 1.0)
    assert not result.ok and result.failure == "timeout", result
    assert 1.0 <= result.wall_seconds < 3.0
    assert result.cpu_seconds > 0.1  # it did burn CPU, and that is charged
    assert result.replaced
    assert [i.kind for i in recorder.incidents] == ["timeout"]
    await still_works(sandbox)


async def test_spinner_is_held_to_its_cpu_quota(sandbox: Any) -> None:
    if isinstance(sandbox, SubprocessSandbox):
        pytest.skip(
            "the subprocess sandbox cannot hold CPU to a fraction of a core without cgroups"
        )
    await sandbox.start("a", SandboxLimits(cpus=0.5))
    result = await sandbox.run("a", SPINNER, {}, 2.0)
    assert result.failure == "timeout"
    expected = 0.5 * result.wall_seconds
    assert abs(result.cpu_seconds - expected) <= 0.2 * expected, result
    await still_works(sandbox)


async def test_fork_bomb_stops_at_the_pids_limit(sandbox: Any, recorder: Any) -> None:
    if unsafe(sandbox):
        pytest.skip("RLIMIT_NPROC counts every process of the user: pids are limited only as root")
    await sandbox.start("a", SandboxLimits(pids=32))
    result = await sandbox.run("a", FORK_BOMB, {}, 20)
    assert not result.ok and result.failure == "pids", result
    assert result.replaced
    assert [i.kind for i in recorder.incidents] == ["pids"]
    await still_works(sandbox)


async def test_sockets_cannot_connect(sandbox: Any) -> None:
    await sandbox.start("a", SandboxLimits(network=False))
    if unsafe(sandbox) and not sandbox.facts("a").get("network_isolated"):
        pytest.skip("no network namespace here (neither root nor user namespaces)")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass  # the host itself can connect: a failure below is the sandbox's doing
        result = await sandbox.run("a", CONNECT, {"port": port}, 10)
    assert not result.ok and result.failure == "error", result
    assert any(
        word in (result.error or "") for word in ("unreachable", "refused", "Network", "timed out")
    )
    interfaces = await sandbox.run(
        "a",
        "import socket\n\ndef run():\n    return [n for _, n in socket.if_nameindex()]\n",
        {},
        10,
    )
    assert interfaces.ok and interfaces.value == ["lo"]
    await still_works(sandbox)


async def test_writes_outside_the_scratch_dir_fail(sandbox: Any, tmp_path: Any) -> None:
    if unsafe(sandbox):
        pytest.skip("without root the runner writes wherever its user can")
    await sandbox.start("a", SandboxLimits())
    os.chmod(tmp_path, 0o700)
    for path in ("/ecology-outside.txt", "/etc/ecology-outside.txt", str(tmp_path / "x.txt")):
        result = await sandbox.run("a", WRITE, {"path": path}, 10)
        assert not result.ok and result.failure == "error", (path, result)
        assert any(
            word in (result.error or "")
            for word in ("Read-only", "Permission denied", "No such file")
        ), result.error
        assert not os.path.exists(path)
    inside = await sandbox.run("a", WRITE, {"path": "scratch.txt"}, 10)
    assert inside.ok, inside
    await still_works(sandbox)


async def test_agents_are_isolated_from_each_other(sandbox: Any) -> None:
    await sandbox.start("a", SandboxLimits())
    await sandbox.start("b", SandboxLimits())
    keep = "import os\n\ndef run():\n    open('mine.txt', 'w').write('a')\n    return os.getcwd()\n"
    written = await sandbox.run("a", keep, {}, 10)
    assert written.ok
    seen = await sandbox.run(
        "b", "import os\n\ndef run():\n    return os.path.exists('mine.txt')\n", {}, 10
    )
    assert seen.ok and seen.value is False
    await sandbox.stop("a")
    gone = await sandbox.run("a", TRIVIAL, {"x": 1}, 10)
    assert gone.failure == "sandbox"
    await still_works(sandbox, "b")


async def test_bad_requests_are_refused_without_running(sandbox: Any) -> None:
    await sandbox.start("a", SandboxLimits())
    assert (await sandbox.run("a", TRIVIAL, {"x": object()}, 10)).failure == "invalid"
    assert (await sandbox.run("a", TRIVIAL, {"x": 1}, 0)).failure == "invalid"
    assert (await sandbox.run("nobody", TRIVIAL, {"x": 1}, 10)).failure == "sandbox"
    await still_works(sandbox)


BURN = (
    "import time\n\ndef run(seconds):\n"
    "    end = time.process_time() + seconds\n"
    "    while time.process_time() < end:\n        pass\n    return True\n"
)


async def test_cpu_seconds_measure_the_work_done(sandbox: Any) -> None:
    await sandbox.start("a", SandboxLimits(cpus=1.0))
    result = await sandbox.run("a", BURN, {"seconds": 0.3}, 10)
    assert result.ok
    assert 0.28 <= result.cpu_seconds < 0.5
    # Measured on the host per call; the sum over calls is what was burnt (ticks add up).
    charged = 0.0
    for _ in range(10):
        step = await sandbox.run("a", BURN, {"seconds": 0.05}, 10)
        assert step.ok
        charged += step.cpu_seconds
    assert 0.48 <= charged < 0.8, charged


async def test_a_cancelled_call_does_not_hold_up_the_next(sandbox: Any) -> None:
    await sandbox.start("a", SandboxLimits(cpus=1.0))
    with anyio.move_on_after(0.3) as scope:
        await sandbox.run("a", SPINNER, {}, 60)
    assert scope.cancelled_caught
    with anyio.fail_after(10):  # not 60 s behind the abandoned spinner
        await still_works(sandbox)


async def test_concurrent_calls_of_one_agent_take_turns(sandbox: Any) -> None:
    await sandbox.start("a", SandboxLimits())
    results: list[Any] = []

    async def call(x: int) -> None:
        results.append(await sandbox.run("a", TRIVIAL, {"x": x}, 10))

    async with anyio.create_task_group() as tg:
        for x in range(5):
            tg.start_soon(call, x)
    assert sorted(r.value for r in results) == [1, 2, 3, 4, 5]


LEFT_BEHIND = """
import os, signal

def run():
    if os.fork() == 0:
        os.setsid()  # out of the call's process group
        if os.fork() == 0:
            signal.pause()
        os._exit(0)
    os.wait()
    return True
"""
MY_PROCESSES = """
import os

def run():
    mine, seen = [], []
    for name in os.listdir("/proc"):
        try:
            if name.isdigit():
                seen.append(int(name))
                if os.stat("/proc/" + name).st_uid == os.getuid():
                    mine.append(int(name))
        except OSError:
            pass
    return {"mine": mine, "seen": seen}
"""


async def test_nothing_a_call_started_outlives_it(sandbox: Any) -> None:
    if unsafe(sandbox):
        pytest.skip("without a uid of its own the runner cannot tell the agent's processes apart")
    await sandbox.start("a", SandboxLimits())
    assert (await sandbox.run("a", LEFT_BEHIND, {}, 10)).ok
    procs = await sandbox.run("a", MY_PROCESSES, {}, 10)
    assert procs.ok, procs
    if type(sandbox) is SubprocessSandbox:
        assert len(procs.value["mine"]) == 2, procs  # the runner and this call's worker
    else:
        # A pid namespace of its own: the runner (pid 1) and this call's worker, nothing else.
        assert sorted(procs.value["seen"])[0] == 1 and len(procs.value["seen"]) == 2, procs
