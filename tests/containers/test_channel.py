"""The host's side of the runner protocol: every reply is checked before use, and a runner
that breaks the protocol (figures of its own, NaN or infinite numbers, another call's id, a
1.5 GB line) is a failed call, an incident and a replaced runner, while the caller is charged
what the host measured. The runner here is a real process speaking the real protocol, with
lies of its own, as a runner taken over by its code would."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from containers.channel import ProtocolError, check_reply, parse_line
from containers.subprocess_backend import SubprocessSandbox
from engine.actions import Write
from engine.clock import VirtualClock
from engine.sandbox import RunResult, SandboxLimits, billable_cpu_seconds

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    "line",
    [
        b'{"id": "c1", "ok": true, "value": NaN}',
        b'{"id": "c1", "ok": true, "value": Infinity}',
        b'{"id": "c1", "ok": true, "value": -Infinity}',
        b'{"id": "c1", "ok": true, "value": [1e999]}',
        b"[1, 2]",
        b"not json",
        b"[" * 100_000 + b"]" * 100_000,
        b'{"id": "c1", "ok": true, "value": 1, "x": ' + b"9" * 5000 + b"}",
    ],
)
def test_lines_that_are_not_strict_json_objects_are_refused(line: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_line(line)


@pytest.mark.parametrize(
    "reply",
    [
        {"id": "c2", "ok": True, "value": 1},  # another call's reply
        {"id": "c1", "ok": True, "value": 1, "cpu_seconds": -1e6},  # figures of its own
        {"id": "c1", "ok": 1, "value": 1},
        {"id": "c1", "ok": "true", "value": 1},
        {"id": "c1", "ok": True},
        {"id": "c1", "ok": False, "failure": "refund", "error": "x"},
        {"id": "c1", "ok": False, "failure": "error", "error": 3},
        {"id": "c1", "ok": False, "failure": "error", "error": "x" * 5000},
        {"id": "c1", "ok": False, "failure": "error"},
    ],
)
def test_replies_are_checked_field_by_field(reply: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError):
        check_reply(reply, "c1")


def test_a_well_formed_reply_passes() -> None:
    assert check_reply({"id": "c1", "ok": True, "value": [1, 2.5]}, "c1").value == [1, 2.5]
    failed = check_reply({"id": "c1", "ok": False, "failure": "oom", "error": "x"}, "c1")
    assert not failed.ok and failed.failure == "oom"


EVIL_RUNNER = r"""
import json, sys, time

mode = sys.argv[1]
out = sys.stdout.buffer
out.write(b'{"ready": true, "pid": 1}\n')
out.flush()
for line in sys.stdin.buffer:
    call = json.loads(line)["id"]
    end = time.process_time() + 0.3
    while time.process_time() < end:  # real CPU time, which the host measures
        pass
    if mode == "figures":
        reply = {"id": call, "ok": True, "value": 1, "cpu_seconds": -1e6, "wall_seconds": -1}
    elif mode == "nan":
        reply = {"id": call, "ok": True, "value": float("nan")}
    elif mode == "infinity":
        reply = {"id": call, "ok": True, "value": float("inf")}
    elif mode == "wrong-id":
        reply = {"id": "c-next", "ok": True, "value": "forged"}
    elif mode == "huge":
        chunk = b'{"id": "' + b"x" * (1 << 20)
        for _ in range(1536):  # 1.5 GB on one line
            out.write(chunk)
        continue
    else:
        reply = {"id": call, "ok": True, "value": "honest"}
    out.write(json.dumps(reply).encode() + b"\n")
    out.flush()
"""


class EvilSandbox(SubprocessSandbox):
    """The subprocess backend with a runner that lies in `mode`."""

    def __init__(self, mode: str, reporter: Any = None) -> None:
        super().__init__(reporter, separate_users=False)
        self.mode = mode

    def _command(self, limits: SandboxLimits, workdir: Path | None, config: dict[str, Any]) -> list[str]:
        return [sys.executable, "-I", "-u", "-c", EVIL_RUNNER, self.mode]


def _rss_mib() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS:"))


@pytest.mark.parametrize("mode", ["figures", "nan", "infinity", "wrong-id", "huge"])
async def test_a_lying_runner_is_refused_replaced_and_charged_what_the_host_measured(
    mode: str, recorder: Any
) -> None:
    async with EvilSandbox(mode, recorder) as sandbox:
        await sandbox.start("a", SandboxLimits())
        rss = _rss_mib()
        result = await sandbox.run("a", "def run():\n    return 1\n", {}, 10)
        assert not result.ok and result.failure == "protocol", result
        assert result.replaced and [i.kind for i in recorder.incidents] == ["protocol"]
        # The 0.3 s the runner burnt, as /proc counted it, whatever it claimed.
        assert 0.28 <= result.cpu_seconds <= 0.5, result
        assert result.value is None and "forged" not in (result.error or "")
        assert _rss_mib() - rss < 64  # read up to the line bound, not 1.5 GB


async def test_in_a_world_a_lying_runner_costs_its_caller_what_it_used() -> None:
    from attacks import CAPACITY, world_config  # tests/containers/attacks.py
    from engine.world import World

    opened = anyio.Event()

    async def open_evil(world: Any) -> tuple[Any, str]:
        sandbox = EvilSandbox("figures", world.report_sandbox)
        await sandbox.open()
        opened.set()
        return sandbox, "a lying runner"

    world = World(world_config("evil"), clock=VirtualClock(), sandbox_factory=open_evil)
    incidents = world.bus.subscribe(["sandbox_incident"])
    async with anyio.create_task_group() as tg:
        tg.start_soon(world.run)
        await opened.wait()  # the factory returns in the same step: the world holds it now
        assert world.sandbox is not None
        assert world.invoke("world", "pause").ok
        code = world.waist.perform("a001", Write("def run():\n    return 1\n", kind="code"), 0.0)
        bucket = world.ledger.buckets["a001"]
        before = bucket.peek(world.clock.now())
        result = await world.invoke_async(code.value["artifact_id"], "run", principal="a001")
        after = bucket.peek(world.clock.now())
        assert not result.ok and result.code == "protocol"
        cpu = result.value["cpu_seconds"]
        assert 0.28 <= cpu <= 0.5
        assert before - after == pytest.approx(cpu * 10 + world.waist.costs["invoke"])
        assert after <= CAPACITY and [e.failure for e in incidents.drain()] == ["protocol"]
        assert all(world.invariants().values())
        tg.cancel_scope.cancel()


@pytest.mark.parametrize(
    ("figure", "billed"),
    [(float("nan"), 0.0), (float("inf"), 0.0), (-1e6, 0.0), (-0.0, 0.0), ("1", 0.0),
     (True, 0.0), (0.25, 0.25), (3, 3.0)],
)
def test_only_a_finite_figure_of_zero_or_more_is_billed(figure: Any, billed: float) -> None:
    assert billable_cpu_seconds(RunResult(ok=True, cpu_seconds=figure)) == billed
