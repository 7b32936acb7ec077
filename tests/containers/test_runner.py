"""The runner on its own: the JSON-lines protocol, survival of failing calls, classification."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from containers import runner
from containers.channel import check_request, runner_source, to_result


class Runner:
    def __init__(self, config: dict[str, Any]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-u", "-c", runner_source(), json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.hello = self.read()

    def read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        return json.loads(self.process.stdout.readline())

    def send(self, line: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line)
        self.process.stdin.flush()

    def call(
        self, code: str, args: dict[str, Any] | None = None, timeout: float = 10, id: int = 1
    ) -> dict[str, Any]:
        request = {"id": id, "code": code, "args": args or {}, "timeout": timeout}
        self.send(json.dumps(request).encode() + b"\n")
        return self.read()


@pytest.fixture
def proc() -> Iterator[Runner]:
    r = Runner({"memory_bytes": 256 * 2**20})
    yield r
    r.process.kill()
    r.process.wait()


def test_hello_then_one_reply_per_request(proc: Runner) -> None:
    assert proc.hello["ready"] is True and proc.hello["pid"] == proc.process.pid
    reply = proc.call("def run(a, b):\n    return {'sum': a + b}\n", {"a": 2, "b": 3}, id=7)
    assert reply["id"] == 7 and reply["ok"] is True and reply["value"] == {"sum": 5}
    assert reply["cpu_seconds"] > 0 and reply["peak_memory_bytes"] > 0 and reply["wall_seconds"] > 0


def test_survives_errors_exits_noise_and_garbage(proc: Runner) -> None:
    err = proc.call("def run():\n    return 1 / 0\n")
    assert err["ok"] is False and err["failure"] == "error"
    assert "ZeroDivisionError" in err["error"] and "return 1 / 0" in err["error"]
    assert "_work" not in err["error"]  # the runner's own frames are not the agent's business
    assert proc.call("import sys\n\ndef run():\n    sys.exit(4)\n")["failure"] == "error"
    assert proc.call("import os\n\ndef run():\n    os._exit(0)\n")["failure"] == "error"
    noisy = proc.call(
        "import os, sys\n\ndef run():\n    print('x' * 100000)\n    os.write(1, b'raw\\n')\n"
        "    sys.stderr.write('err')\n    return 'done'\n"
    )
    assert noisy["value"] == "done"
    proc.send(b"this is not json\n")
    garbage = proc.read()
    assert garbage["failure"] == "sandbox" and garbage["id"] is None
    assert proc.call("def run():\n    return 'alive'\n")["value"] == "alive"


def test_timeout_kills_the_call_and_what_it_forked(proc: Runner) -> None:
    code = (
        "import os\n\ndef run():\n    if os.fork() == 0:\n        while True:\n            pass\n"
        "    while True:\n        pass\n"
    )
    reply = proc.call(code, timeout=0.5)
    assert reply["failure"] == "timeout"
    assert 0.5 <= reply["wall_seconds"] < 2
    assert reply["cpu_seconds"] > 0.1  # charged; how much depends on what else the CPUs run
    assert proc.call("def run():\n    return 1\n")["ok"]


def test_memory_error_is_oom(proc: Runner) -> None:
    reply = proc.call("def run():\n    return len(bytearray(1 << 30))\n")
    assert reply["failure"] == "oom"


def test_large_replies_are_refused() -> None:
    r = Runner({})
    try:
        reply = r.call("def run():\n    return 'x' * (2 << 20)\n")
        assert reply["failure"] == "invalid" and "too large" in reply["error"]
    finally:
        r.process.kill()
        r.process.wait()


def test_pids_errors_are_recognised() -> None:
    def fork_failure() -> BaseException:
        try:
            exec(compile("raise BlockingIOError(11, 'no more')  # os.fork()", "<artifact>", "exec"))
        except BlockingIOError as exc:
            return exc
        raise AssertionError

    import linecache

    linecache.cache["<artifact>"] = (
        1,
        None,
        ["raise BlockingIOError(11, 'no more')  # os.fork()\n"],
        "<artifact>",
    )
    assert runner._is_pids_error(fork_failure())
    assert runner._is_pids_error(RuntimeError("can't start new thread"))
    assert not runner._is_pids_error(BlockingIOError(11, "socket would block"))
    assert not runner._is_pids_error(ValueError("x"))


def test_replies_become_run_results() -> None:
    ok = to_result({"ok": True, "value": [1], "cpu_seconds": 0.5, "wall_seconds": 1.0})
    assert ok.ok and ok.value == [1] and ok.cpu_seconds == 0.5 and ok.failure is None
    bad = to_result({"ok": False, "failure": "weird", "error": "x"}, replaced=True)
    assert bad.failure == "error" and bad.replaced and bad.value is None


@pytest.mark.parametrize(
    ("code", "args", "timeout", "problem"),
    [
        (1, {}, 1, "code"),
        ("", [], 1, "args"),
        ("", {1: 2}, 1, "args"),
        ("", {"a": {1, 2}}, 1, "JSON"),
        ("", {}, 0, "timeout"),
        ("", {}, "5", "timeout"),
    ],
)
def test_bad_requests_are_named(code: Any, args: Any, timeout: Any, problem: str) -> None:
    assert problem in (check_request(code, args, timeout) or "")
    assert check_request("def run(): pass", {"a": [1]}, 1.5) is None
