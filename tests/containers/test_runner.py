"""The runner on its own: the JSON-lines protocol, survival of failing calls, classification,
and the wall between a call's code and the runner (its pipes, its memory, its figures)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from containers import runner
from containers.channel import check_request, runner_source

UNPRIVILEGED = 4242  # a uid with nothing of its own on this machine


class Runner:
    def __init__(self, config: dict[str, Any], *, as_uid: int | None = None) -> None:
        command = [sys.executable, "-I", "-u", "-c", runner_source(), json.dumps(config)]
        if as_uid is not None:
            # /usr/bin/python3: the test's own interpreter may live where that uid cannot go.
            command = [
                "setpriv", f"--reuid={as_uid}", f"--regid={as_uid}", "--clear-groups",
                "/usr/bin/python3", *command[1:],
            ]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd="/"
        )
        self.hello = self.read()

    def read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        return runner.loads_strict(self.process.stdout.readline())

    def send(self, line: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line)
        self.process.stdin.flush()

    def call(
        self, code: str, args: dict[str, Any] | None = None, timeout: float = 10, id: Any = "c1"
    ) -> dict[str, Any]:
        request = {"id": id, "code": code, "args": args or {}, "timeout": timeout}
        self.send(json.dumps(request).encode() + b"\n")
        return self.read()

    def rss_kib(self) -> int:
        with open(f"/proc/{self.process.pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))

    def close(self) -> None:
        self.process.kill()
        self.process.wait()


@pytest.fixture
def proc() -> Iterator[Runner]:
    r = Runner({"memory_bytes": 256 * 2**20})
    yield r
    r.close()


def as_unprivileged() -> Iterator[Runner]:
    if os.geteuid() != 0 or not shutil.which("setpriv") or not os.path.exists("/usr/bin/python3"):
        pytest.fail("these tests run the runner as another uid: they need root, setpriv and "
                    "/usr/bin/python3 (CI has all three)")
    r = Runner({"memory_bytes": 256 * 2**20}, as_uid=UNPRIVILEGED)
    yield r
    r.close()


@pytest.fixture
def unprivileged() -> Iterator[Runner]:
    yield from as_unprivileged()


def test_hello_then_one_reply_per_request_and_no_figures(proc: Runner) -> None:
    assert proc.hello["ready"] is True and proc.hello["pid"] == proc.process.pid
    assert proc.hello["dumpable"] is False and proc.hello["seccomp"] is True
    reply = proc.call("def run(a, b):\n    return {'sum': a + b}\n", {"a": 2, "b": 3}, id="x7")
    # The host measures CPU, memory and wall time: a reply carries none of them.
    assert reply == {"ok": True, "value": {"sum": 5}, "id": "x7"}


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
    started = time.monotonic()
    reply = proc.call(code, timeout=0.5)
    assert reply["failure"] == "timeout"
    assert 0.5 <= time.monotonic() - started < 3
    assert [p for p in runner._children_of(proc.process.pid)] == []
    assert proc.call("def run():\n    return 1\n")["ok"]


def test_memory_error_is_oom(proc: Runner) -> None:
    reply = proc.call("def run():\n    return len(bytearray(1 << 30))\n")
    assert reply["failure"] == "oom"


def test_a_shared_mapping_over_the_address_space_limit_is_refused() -> None:
    r = Runner({"memory_bytes": 64 * 2**20, "address_space_bytes": 384 * 2**20})
    try:
        code = "import mmap\n\ndef run():\n    m = mmap.mmap(-1, 2 << 30)\n    return len(m)\n"
        reply = r.call(code)
        assert reply["failure"] == "oom", reply
    finally:
        r.close()


def test_results_that_are_not_json_are_refused(proc: Runner) -> None:
    for value in ("float('nan')", "float('inf')", "-float('inf')", "[1e308 * 10]", "object()"):
        reply = proc.call(f"def run():\n    return {value}\n")
        assert reply["ok"] is False and reply["failure"] == "invalid", (value, reply)
    deep = proc.call("def run():\n    x = []\n    for _ in range(100000):\n        x = [x]\n    return x\n")
    assert deep["failure"] == "invalid"


def test_large_results_are_refused() -> None:
    r = Runner({})
    try:
        reply = r.call("def run():\n    return 'x' * (2 << 20)\n")
        assert reply["failure"] == "invalid" and "too large" in reply["error"]
        # Numbers re-encoded longer than the worker wrote them ("1e9" is 1000000000.0).
        grown = r.call("import json\n\ndef run():\n    return json.loads('[' + ','.join(['1e9'] * 200000) + ']')\n")
        assert grown["failure"] == "invalid", grown
        assert r.call("def run():\n    return 'fine'\n")["value"] == "fine"
    finally:
        r.close()


GIGABYTES_INTO_EVERY_PIPE = """
import os

def run():
    chunk = b"x" * (1 << 20)
    written = 0
    for fd in range(3, 64):
        try:
            for _ in range(1536):  # 1.5 GB
                written += os.write(fd, chunk)
        except OSError:
            pass
    return written
"""


def test_a_gigabyte_and_a_half_into_the_result_pipe_is_cut_off(proc: Runner) -> None:
    before = proc.rss_kib()
    started = time.monotonic()
    reply = proc.call(GIGABYTES_INTO_EVERY_PIPE, timeout=30)
    assert reply["failure"] == "invalid" and "over" in reply["error"], reply
    assert time.monotonic() - started < 10  # cut off at the bound, not read to the end
    assert proc.rss_kib() - before < 16 * 1024  # the runner read 1 MiB, not 1.5 GB
    assert proc.call("def run():\n    return 'alive'\n")["value"] == "alive"


FORGED_RESULTS = """
import os

def run(kind):
    if kind == "garbage-first":
        os.write(3, b'{"ok": true, "value": "forged"}\\n')
        return "honest"
    if kind == "nan":
        os.write(3, b'{"ok": true, "value": NaN}')
        os._exit(0)
    if kind == "unknown-failure":
        os.write(3, b'{"ok": false, "failure": "paid", "error": "x"}')
        os._exit(0)
    if kind == "extra-fields":
        os.write(3, b'{"ok": true, "value": 1, "cpu_seconds": -1e6, "id": "c9"}')
        os._exit(0)
"""


def test_what_a_worker_forges_in_its_result_goes_nowhere(proc: Runner) -> None:
    mixed = proc.call(FORGED_RESULTS, {"kind": "garbage-first"})
    assert mixed["failure"] == "invalid"  # two documents are not one result
    for kind in ("nan", "unknown-failure"):
        reply = proc.call(FORGED_RESULTS, {"kind": kind}, id="c2")
        assert reply["failure"] == "invalid" and reply["id"] == "c2", (kind, reply)
    extra = proc.call(FORGED_RESULTS, {"kind": "extra-fields"}, id="c3")
    # Only what a result may hold is passed on; the id is the runner's, not the worker's.
    assert extra == {"ok": True, "value": 1, "id": "c3"}


WHAT_THE_WORKER_HOLDS = """
import os, sys

def run():
    fds = sorted(int(fd) for fd in os.listdir("/proc/self/fd"))
    targets = {fd: os.readlink(f"/proc/self/fd/{fd}") for fd in fds if fd < 3}
    frames, frame = 0, sys._getframe()
    while frame is not None:
        frames += 1
        frame = frame.f_back
    return {"fds": fds, "std": targets, "frames": frames}
"""


def test_the_worker_holds_no_descriptor_of_the_protocol(proc: Runner) -> None:
    reply = proc.call(WHAT_THE_WORKER_HOLDS)
    assert reply["ok"], reply
    # 0-2 are /dev/null, 3 the result pipe, and one more: the listing's own descriptor.
    assert reply["value"]["fds"][:4] == [0, 1, 2, 3] and len(reply["value"]["fds"]) <= 5
    assert set(reply["value"]["std"].values()) == {"/dev/null"}


FORGE_THROUGH_THE_RUNNER = """
import gc, io, os, sys

def run():
    said = []
    parent = os.getppid()
    for path in (f"/proc/{parent}/fd/1", f"/proc/{parent}/fd/0", f"/proc/{parent}/mem"):
        try:
            fd = os.open(path, os.O_WRONLY)
            os.write(fd, b'{"id": "c2", "ok": true, "value": "forged"}\\n')
            said.append(path + ": written")
        except OSError as exc:
            said.append(f"{path}: {exc.strerror}")
    # The runner's frames and objects, copied into this process by fork: its stdout object
    # writes to this process's fd 1, which is /dev/null here.
    for obj in gc.get_objects():
        if isinstance(obj, io.BufferedWriter) and obj.name == "<stdout>":
            try:
                obj.write(b'{"id": "c2", "ok": true, "value": "forged"}\\n')
                obj.flush()
                said.append("runner's stdout object: written")
            except Exception as exc:
                said.append(f"runner's stdout object: {exc}")
    return said
"""


def test_a_forged_reply_reaches_nothing(unprivileged: Runner) -> None:
    first = unprivileged.call(FORGE_THROUGH_THE_RUNNER, id="c1")
    assert first["ok"] and first["id"] == "c1", first
    said = first["value"]
    assert all("Permission denied" in line for line in said if "/proc/" in line), said
    # The next call is answered by the runner, not by anything the attacker wrote.
    second = unprivileged.call("def run():\n    return 'honest'\n", id="c2")
    assert second == {"ok": True, "value": "honest", "id": "c2"}


TRACE_THE_RUNNER = """
import ctypes, os, signal

def run():
    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getppid()
    out = {}
    for name, request in (("attach", 16), ("seize", 0x4206)):
        out[name] = (libc.ptrace(request, parent, 0, 0), ctypes.get_errno())
    out["unshare"] = (libc.unshare(0x10000000), ctypes.get_errno())
    out["memfd"] = (libc.memfd_create(b"x", 0), ctypes.get_errno())
    out["fork"] = os.fork() > 0 or os._exit(0)
    return out
"""


@pytest.mark.parametrize("who", ["root", "unprivileged"])
def test_the_code_cannot_trace_the_runner(who: str, proc: Runner) -> None:
    runner_proc = proc if who == "root" else next(as_unprivileged())
    try:
        reply = runner_proc.call(TRACE_THE_RUNNER)
        assert reply["ok"], reply
        out = reply["value"]
        eperm = [-1, 1]
        assert out["attach"] == eperm and out["seize"] == eperm  # seccomp, even for root
        assert out["unshare"] == eperm and out["memfd"] == eperm
        assert out["fork"] is True  # an ordinary fork still works
        assert runner_proc.call("def run():\n    return 'alive'\n")["value"] == "alive"
    finally:
        if runner_proc is not proc:
            runner_proc.close()


def test_the_seccomp_program_is_well_formed() -> None:
    program = runner._seccomp_program()
    assert program is not None, "an unknown machine: the worker would run without the filter"
    code, count = program
    assert len(code) == 8 * count
    # Every jump lands inside the program.
    for index in range(count):
        op, jt, jf, _ = __import__("struct").unpack_from("=HBBI", code, 8 * index)
        if op & 0x07 == 0x05:  # BPF_JMP
            assert index + 1 + max(jt, jf) < count


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


@pytest.mark.parametrize(
    ("code", "args", "timeout", "problem"),
    [
        (1, {}, 1, "code"),
        ("", [], 1, "args"),
        ("", {1: 2}, 1, "args"),
        ("", {"a": {1, 2}}, 1, "JSON"),
        ("", {"a": float("nan")}, 1, "JSON"),
        ("", {}, 0, "timeout"),
        ("", {}, "5", "timeout"),
        ("", {}, float("inf"), "timeout"),
        ("", {}, float("nan"), "timeout"),
        ("", {}, True, "timeout"),
    ],
)
def test_bad_requests_are_named(code: Any, args: Any, timeout: Any, problem: str) -> None:
    assert problem in (check_request(code, args, timeout) or "")
    assert check_request("def run(): pass", {"a": [1]}, 1.5) is None
