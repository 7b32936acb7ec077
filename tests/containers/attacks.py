"""Attacks on the sandboxes, as an agent's code would make them, through `world.invoke_async`.

One catalogue for every backend, used two ways: imported by the tests (the app as root, in
the test's own process), and run as a script by an unprivileged uid (`setpriv --reuid 4242`),
the app then being that script, which writes what it saw as JSON for the test to judge:

    python attacks.py --backend bwrap --context ctx.json --out records.json

Each attack is contained when: the caller is charged what the host measured (a finite figure
>= 0, never a balance above capacity), its own sandbox answers honestly afterwards, another
agent's sandbox keeps answering, the app keeps running (it is the process writing the record),
and nothing is left behind (checked after the sandbox closes). `problems(record)` says what
was not. Standalone on purpose: only the project's packages and the standard library.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import anyio

MiB = 2**20
MEMORY_MB = 128
PIDS = 32
COMPUTE_PER_CPU = 10.0
CAPACITY = 5.0
ADD = "def run(a=1, b=2):\n    return a + b\n"


@dataclass
class Context:
    """What the attacks aim at on this machine, and the markers that show they got there."""

    token: str  # a unique word: names of files written outside, daemons' command lines
    home: str  # the app's home directory, with .ssh/id_rsa holding the secret
    secret: str  # in ~/.ssh/id_rsa and in the app's environment (OPENAI_API_KEY)
    journal: str  # the world's journal file
    app_pid: int
    outside_dirs: list[str]  # where the code tries to write
    tcp_port: int = 0
    udp_port: int = 0


def prepare_home(home: str, secret: str) -> None:
    """A home directory like a user's: 0700, with a private key."""
    os.makedirs(os.path.join(home, ".ssh"), mode=0o700, exist_ok=True)
    os.chmod(home, 0o700)
    key = os.path.join(home, ".ssh", "id_rsa")
    with open(os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write(f"-----BEGIN OPENSSH PRIVATE KEY-----\n{secret}\n-----END OPENSSH PRIVATE KEY-----\n")


# -- the attacks: agents' code ----------------------------------------------------------------

FORGED_LINE = (
    "import json\n"
    "LINE = json.dumps({'id': 'guess', 'ok': True, 'value': 'forged', 'cpu_seconds': -1e6,"
    " 'peak_memory_bytes': -1, 'wall_seconds': float('nan')}).encode() + b'\\n'\n"
)

FORGE_THROUGH_PROC = FORGED_LINE + """
import os

def run():
    said = {}
    for pid in sorted({os.getppid(), 1}):
        for fd in (0, 1, 2):
            path = f"/proc/{pid}/fd/{fd}"
            try:
                handle = os.open(path, os.O_WRONLY)
                os.write(handle, LINE * 4)
                said[path] = "written"
            except OSError as exc:
                said[path] = exc.strerror or str(exc)
    return said
"""

FORGE_THROUGH_FRAMES = FORGED_LINE + """
import gc, io, os, sys

def run():
    said = []
    frame = sys._getframe()
    while frame is not None:  # the runner's frames, copied into this process by fork
        for value in list(frame.f_locals.values()):
            if isinstance(value, io.BufferedWriter):
                try:
                    value.write(LINE)
                    value.flush()
                    said.append("a frame's writer")
                except Exception as exc:
                    said.append(repr(exc))
        frame = frame.f_back
    for obj in gc.get_objects():
        if isinstance(obj, io.BufferedWriter) and obj.name in ("<stdout>", 1):
            try:
                obj.write(LINE)
                obj.flush()
                said.append("the runner's stdout object")
            except Exception as exc:
                said.append(repr(exc))
    for fd in range(64):  # every descriptor this process holds, the result pipe included
        try:
            os.write(fd, LINE)
            said.append(fd)
        except OSError:
            pass
    return said
"""

BAD_FIGURES = """
import os

def run(kind):
    if kind == "return-nan":
        return float("nan")
    if kind == "return-inf":
        return [float("-inf")]
    documents = {
        "negative": b'{"ok": true, "value": 1, "cpu_seconds": -1e6, "wall_seconds": -1}',
        "nan": b'{"ok": true, "value": NaN, "cpu_seconds": NaN}',
        "inf": b'{"ok": true, "value": 1e999, "cpu_seconds": Infinity}',
    }
    os.write(3, documents[kind])  # straight into the result pipe, as the runner would
    os._exit(0)
"""

HUGE_REPLY = """
import os

def run():
    chunk = b'{"ok": true, "value": "' + b"x" * (1 << 20)
    for fd in range(64):
        try:
            for _ in range(1536):  # 1.5 GB into every descriptor that takes it
                os.write(fd, chunk)
        except OSError:
            pass
    return "written"
"""

SHARED_MMAP = """
import mmap

def run():
    m = mmap.mmap(-1, 2 << 30)  # MAP_SHARED | MAP_ANONYMOUS: shmem, not the heap
    for i in range(0, len(m), 4096):
        m[i] = 1
    return "held 2 GiB"
"""

SHARED_MMAP_FORKED = """
import mmap, os, select, time

def run(children, mib):
    r, w = os.pipe()
    pids = []
    for _ in range(children):
        pid = os.fork()
        if pid == 0:
            m = mmap.mmap(-1, mib << 20)
            for i in range(0, len(m), 4096):
                m[i] = 1
            os.write(w, b"x")
            time.sleep(60)
            os._exit(0)
        pids.append(pid)
    touched, deadline = 0, time.monotonic() + 5
    while touched < children and time.monotonic() < deadline:
        if select.select([r], [], [], 0.1)[0]:
            touched += len(os.read(r, 64))
    time.sleep(0.5)  # the memory is held: the watchdog's turn
    alive = sum(1 for pid in pids if os.waitpid(pid, os.WNOHANG)[0] == 0)
    return {"touched": touched, "alive": alive}
"""

TRACE = """
import ctypes, os

def run():
    libc = ctypes.CDLL(None, use_errno=True)
    out = {}
    for pid in sorted({os.getppid(), 1}):
        for name, request in (("attach", 16), ("seize", 0x4206)):
            rc = libc.ptrace(request, pid, 0, 0)
            out[f"{name} {pid}"] = [rc, ctypes.get_errno()]
        try:
            with open(f"/proc/{pid}/mem", "rb") as f:
                f.read(1)
            out[f"mem {pid}"] = "read"
        except OSError as exc:
            out[f"mem {pid}"] = exc.strerror
    return out
"""

KILL_ALL = """
import os, signal

def run():
    out = {}
    for pid, sig in ((os.getppid(), signal.SIGSTOP), (1, signal.SIGKILL), (-1, signal.SIGKILL)):
        try:
            os.kill(pid, sig)
            out[f"{pid} {sig.name}"] = "sent"
        except OSError as exc:
            out[f"{pid} {sig.name}"] = exc.strerror
    return out
"""

FORK_BOMB = "import os\n\ndef run():\n    while True:\n        os.fork()\n"

DAEMON = """
import os, sys

def run(token):
    r, w = os.pipe()  # close-on-exec: EOF on r once the daemon runs its own program
    if os.fork() == 0:
        os.setsid()  # out of the call's process group and session
        if os.fork() == 0:
            os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(3600)", token])
        os._exit(0)
    os.close(w)
    os.wait()
    os.read(r, 1)
    return True
"""

READ_SECRETS = """
import os

def run(paths, home):
    out = {}
    for path in paths:
        try:
            with open(path, "rb") as f:
                out[path] = f.read(4096).decode("latin-1")
        except OSError as exc:
            out[path] = "refused: " + (exc.strerror or str(exc))
    try:
        out["home"] = os.listdir(home)
    except OSError as exc:
        out["home"] = "refused: " + (exc.strerror or str(exc))
    return out
"""

WRITE_OUTSIDE = """
import os

def run(dirs, token):
    out = {}
    for d in dirs:
        path = os.path.join(d, token)
        try:
            with open(path, "w") as f:
                f.write("escaped")
            out[path] = "written"
        except OSError as exc:
            out[path] = exc.strerror or str(exc)
    return out
"""

LOOPBACK = """
import socket

def run(tcp, udp, token):
    out = {}
    try:
        with socket.create_connection(("127.0.0.1", tcp), timeout=2) as s:
            s.sendall(token.encode())
            out["tcp"] = "connected"
    except OSError as exc:
        out["tcp"] = exc.strerror or str(exc)
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.sendto(token.encode(), ("127.0.0.1", udp))
        out["udp"] = "sent"
    except OSError as exc:
        out["udp"] = exc.strerror or str(exc)
    return out
"""

ENVIRON = """
import os

def run(app_pid, name):
    out = {"own": dict(os.environ)}
    try:
        with open(f"/proc/{app_pid}/environ", "rb") as f:
            out["app"] = f.read().decode("latin-1")
    except OSError as exc:
        out["app"] = exc.strerror
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    if name.encode() in f.read():
                        found.append(int(pid))
            except OSError:
                pass
    out["found"] = found
    return out
"""


@dataclass(frozen=True)
class Attack:
    name: str
    code: str
    args: Callable[[Context], dict[str, Any]] = lambda ctx: {}
    timeout_class: str = "call"  # the world's timeout applies to every call
    follow_ups: int = 1  # honest calls of the attacker afterwards, each must be answered honestly


ATTACKS: list[Attack] = [
    Attack("forged reply via /proc/<runner>/fd", FORGE_THROUGH_PROC, follow_ups=4),
    Attack("forged reply via the runner's frames", FORGE_THROUGH_FRAMES, follow_ups=4),
    *[Attack(f"figures: {kind}", BAD_FIGURES, lambda ctx, k=kind: {"kind": k})
      for kind in ("negative", "nan", "inf", "return-nan", "return-inf")],
    Attack("a 1.5 GB reply", HUGE_REPLY),
    Attack("a 2 GiB shared mmap", SHARED_MMAP),
    Attack("shared mmaps over forked children", SHARED_MMAP_FORKED,
           lambda ctx: {"children": 6, "mib": 40}),
    Attack("ptrace of the runner", TRACE),
    Attack("kill(-1, 9)", KILL_ALL),
    Attack("a fork bomb", FORK_BOMB),
    Attack("a daemon outliving its call", DAEMON, lambda ctx: {"token": ctx.token}),
    Attack("reading ~/.ssh and the journal", READ_SECRETS, lambda ctx: {
        "paths": [os.path.join(ctx.home, ".ssh", "id_rsa"), ctx.journal, ctx.journal + "-wal"],
        "home": ctx.home,
    }),
    Attack("writing outside the sandbox", WRITE_OUTSIDE,
           lambda ctx: {"dirs": ctx.outside_dirs, "token": ctx.token}),
    Attack("loopback TCP and UDP", LOOPBACK,
           lambda ctx: {"tcp": ctx.tcp_port, "udp": ctx.udp_port, "token": ctx.token}),
    Attack("reading the app's environ", ENVIRON,
           lambda ctx: {"app_pid": ctx.app_pid, "name": "OPENAI_API_KEY"}),
]
BY_NAME = {a.name: a for a in ATTACKS}

# What the subprocess backend without root does not hold (and why it is opt-in only):
# the code runs as the app's own user, in the app's own namespaces.
UNSAFE_SUBPROCESS_DOES_NOT_HOLD = (
    "kill(-1, 9)",  # kills the app
    "a fork bomb",  # no pids limit: RLIMIT_NPROC counts every process of the user
    "reading ~/.ssh and the journal",
    "writing outside the sandbox",
    "reading the app's environ",
)


# -- running them in a world ------------------------------------------------------------------


@dataclass
class Record:
    """What one attack did, as the app saw it."""

    attack: str
    backend: str
    ok: bool
    failure: str | None
    error: str | None
    value: Any
    cpu_seconds: Any
    compute_charged: float  # what left the caller's bucket, the invoke's own cost excluded
    compute_billed: Any  # what the world says it charged for the CPU
    balance_after: float
    capacity: float
    wall_seconds: float  # measured by the app around the call
    incidents: list[str]
    follow_ups: list[Any]  # what the attacker's honest calls afterwards returned
    bystander: Any  # what another agent's honest call afterwards returned
    app_rss_growth_mib: float
    host: dict[str, Any] = field(default_factory=dict)  # host-side observations


def world_config(name: str):
    from engine.config import parse_world

    _register_idle()
    return parse_world({
        "name": name,
        "seed": 1,
        "compute": {"compute_per_cpu": COMPUTE_PER_CPU},
        "sandbox": {"memory_mb": MEMORY_MB, "pids": PIDS, "timeout": 10.0},
        "agents": [{"brain": "test_idle", "count": 2, "scrip": 50, "rate": 5.0,
                    "capacity": CAPACITY}],
    })


def _register_idle() -> None:
    from engine.actions import Sleep
    from engine.brains import register
    from engine.brains.base import Brain

    @register
    class Idle(Brain):
        """Sleeps: the harness drives the world through the invoke path."""

        name = "test_idle"

        def decide(self, view):
            return Sleep(seconds=1e9)


def _rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _listeners() -> tuple[socket.socket, socket.socket]:
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(8)
    tcp.setblocking(False)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.setblocking(False)
    return tcp, udp


def _what_arrived(tcp: socket.socket, udp: socket.socket) -> list[str]:
    """What reached the app's loopback listeners (nothing should). No waiting needed: the
    call is over, so anything it sent is already queued."""
    arrived = []
    try:
        conn, _ = tcp.accept()
        arrived.append("a TCP connection")
        conn.close()
    except BlockingIOError:
        pass
    try:
        arrived.append(f"a UDP datagram {udp.recv(256)!r}")
    except BlockingIOError:
        pass
    return arrived


def processes_with(word: str) -> list[int]:
    """Host processes whose command line holds `word` (a daemon's marker)."""
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit() and int(pid) != os.getpid():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if word.encode() in f.read():
                        found.append(int(pid))
            except OSError:
                pass
    return found


def files_named(token: str, dirs: list[str]) -> list[str]:
    return [os.path.join(d, token) for d in dirs if os.path.lexists(os.path.join(d, token))]


async def run_attacks(
    backend: str,
    open_sandbox: Callable[[Any], Awaitable[tuple[Any, str]]],
    ctx: Context,
    names: list[str],
) -> tuple[list[Record], dict[str, Any]]:
    """Run the named attacks in a fresh world whose sandbox `open_sandbox` opens; return a
    record per attack and what was left once the world (and its sandbox) closed."""
    from engine.actions import Write
    from engine.clock import VirtualClock
    from engine.world import World

    world = World(world_config(f"attacks-{ctx.token[-8:]}"), clock=VirtualClock(),
                  sandbox_factory=open_sandbox)
    world.attach_journal(ctx.journal)
    incidents = world.bus.subscribe(["sandbox_incident"])
    tcp, udp = _listeners()
    ctx.tcp_port, ctx.udp_port = tcp.getsockname()[1], udp.getsockname()[1]
    records: list[Record] = []
    closed: dict[str, Any] = {}

    def write(owner: str, source: str) -> str:
        result = world.waist.perform(owner, Write(source, kind="code"), world.clock.now())
        assert result.ok, result.error
        return result.value["artifact_id"]

    async with anyio.create_task_group() as tg:
        tg.start_soon(world.run)
        while world.sandbox is None:
            await anyio.sleep(0.01)
        sandbox = world.sandbox
        # A paused world's time stands still: buckets do not refill while sandboxes work.
        assert world.invoke("world", "pause").ok
        add_a, add_b = write("a001", ADD), write("a002", ADD)
        bucket = world.ledger.buckets["a001"]
        invoke_cost = world.waist.costs["invoke"]
        for name in names:
            attack = BY_NAME[name]
            code = write("a001", attack.code)
            incidents.drain()
            rss_before = _rss_mib()
            before = bucket.peek(world.clock.now())
            started = time.monotonic()
            result = await world.invoke_async(code, "run", principal="a001", **attack.args(ctx))
            wall = time.monotonic() - started
            after = bucket.peek(world.clock.now())
            host = {
                "arrived": _what_arrived(tcp, udp),
                "daemons": processes_with(ctx.token),
                "files_outside": files_named(ctx.token, ctx.outside_dirs),
            }
            value = result.value or {}
            follow_ups = []
            for n in range(attack.follow_ups):
                again = await world.invoke_async(add_a, "run", principal="a001", a=n, b=1000)
                follow_ups.append(again.value["value"] if again.ok else f"failed: {again.error}")
            other = await world.invoke_async(add_b, "run", principal="a002", a=20, b=22)
            records.append(Record(
                attack=name, backend=backend, ok=result.ok, failure=result.code,
                error=result.error, value=value.get("value"),
                cpu_seconds=value.get("cpu_seconds"),
                compute_charged=before - after - invoke_cost,
                compute_billed=value.get("compute"), balance_after=after,
                capacity=bucket.capacity, wall_seconds=wall,
                incidents=[e.failure for e in incidents.drain()],
                follow_ups=follow_ups,
                bystander=other.value["value"] if other.ok else f"failed: {other.error}",
                app_rss_growth_mib=_rss_mib() - rss_before, host=host,
            ))
        closed["invariants"] = world.invariants()
        closed["base_dir"] = str(getattr(sandbox, "base_dir", "") or "")
        tg.cancel_scope.cancel()
    # The world closed its sandbox on the way out: what is left now is left for good.
    closed["daemons"] = processes_with(ctx.token)
    closed["files_outside"] = files_named(ctx.token, ctx.outside_dirs)
    closed["base_dir_left"] = bool(closed["base_dir"]) and os.path.exists(closed["base_dir"])
    closed["journal_mode"] = oct(os.stat(ctx.journal).st_mode & 0o777)
    tcp.close()
    udp.close()
    return records, closed


# -- judging ----------------------------------------------------------------------------------


SHARED_DIRS = ("/tmp", "/var/tmp", "/dev/shm")


def problems(record: dict[str, Any], ctx: Context, *, shared_dirs_writable: bool = False) -> list[str]:
    """What this record shows was not contained; empty when it was. `shared_dirs_writable`:
    the backend (subprocess as root) lets the agent's uid write to /tmp and the like while
    its sandbox lives, and removes it all when it stops (judged by `leftovers`)."""
    found: list[str] = []
    name, value = record["attack"], record["value"]
    said = json.dumps([value, record["error"]], default=str)
    cpu = record["cpu_seconds"]
    # Charged what the host measured: a finite number >= 0, no more than the wall time of
    # the call on every core, billed as such, and the balance never above capacity.
    if not (isinstance(cpu, (int, float)) and math.isfinite(cpu) and cpu >= 0):
        found.append(f"cpu_seconds is {cpu!r}")
    elif cpu > record["wall_seconds"] * (os.cpu_count() or 1) + 0.05:
        found.append(f"charged {cpu} s of CPU in {record['wall_seconds']:.3f} s of wall time")
    else:
        if abs(record["compute_billed"] - cpu * COMPUTE_PER_CPU) > 1e-9:
            found.append(f"billed {record['compute_billed']} for {cpu} CPU seconds")
        if abs(record["compute_charged"] - record["compute_billed"]) > 1e-6:
            found.append(f"{record['compute_charged']} left the bucket, {record['compute_billed']} billed")
    balance = record["balance_after"]
    if not (isinstance(balance, float) and math.isfinite(balance) and balance <= record["capacity"]):
        found.append(f"balance {balance!r} with capacity {record['capacity']}")
    if "forged" in said:
        found.append("a forged reply was taken")
    honest = list(range(1000, 1000 + len(record["follow_ups"])))
    if record["follow_ups"] != honest:
        found.append(f"the attacker's next calls answered {record['follow_ups']}, not {honest}")
    if record["bystander"] != 42:
        found.append(f"another agent's call answered {record['bystander']!r}")
    if record["app_rss_growth_mib"] > 200:
        found.append(f"the app grew by {record['app_rss_growth_mib']:.0f} MiB")
    host = record["host"]
    if host["daemons"]:
        found.append(f"processes outlived the call: {host['daemons']}")
    if host["arrived"]:
        found.append(f"reached the app's loopback: {host['arrived']}")
    if ctx.secret in said:
        found.append("the secret was read")
    found += _specific(name, record, ctx, shared_dirs_writable)
    return found


def _specific(
    name: str, record: dict[str, Any], ctx: Context, shared_dirs_writable: bool
) -> list[str]:
    value, ok, failure = record["value"], record["ok"], record["failure"]
    found = []
    if name == "forged reply via /proc/<runner>/fd":
        if not ok or "written" in value.values():
            found.append(f"the runner's descriptors were open to the code: {record}")
    elif name.startswith("figures:"):
        kind = name.split(": ", 1)[1]
        if kind == "negative":
            if not (ok and value == 1):
                found.append(f"a plain result was lost: {record}")
        elif ok or failure != "invalid":
            found.append(f"a non-finite result was accepted: ok={ok} failure={failure}")
    elif name == "a 1.5 GB reply":
        if ok or failure != "invalid":
            found.append(f"the huge reply was not refused: ok={ok} failure={failure}")
    elif name == "a 2 GiB shared mmap":
        if ok or failure != "oom":
            found.append(f"2 GiB of shared memory: ok={ok} failure={failure} {record['error']}")
    elif name == "shared mmaps over forked children":
        held = value["alive"] * 40 if ok and isinstance(value, dict) else 0
        if not (failure == "oom" or (ok and held <= MEMORY_MB)):
            found.append(f"{held} MiB of shared memory held under a {MEMORY_MB} MiB limit: {record}")
        if failure == "oom" and "oom" not in record["incidents"]:
            found.append("an OOM without an incident")
    elif name == "ptrace of the runner":
        if not ok:
            found.append(f"the call failed: {record['error']}")
        else:
            for key, outcome in value.items():
                if key.startswith(("attach", "seize")) and outcome[0] != -1:
                    found.append(f"{key} succeeded")
                if key.startswith("mem") and outcome == "read":
                    found.append(f"{key} was read")
    elif name == "a fork bomb":
        if ok or failure != "pids":
            found.append(f"the fork bomb: ok={ok} failure={failure}")
        if "pids" not in record["incidents"]:
            found.append("a fork bomb without an incident")
    elif name == "reading ~/.ssh and the journal":
        if isinstance(value, dict):
            if any("SQLite format" in str(v) for v in value.values()):
                found.append("the journal was read")
            if isinstance(value.get("home"), list):
                found.append(f"the home directory was listed: {value['home']}")
    elif name == "writing outside the sandbox":
        written = record["host"]["files_outside"]
        if shared_dirs_writable:
            written = [p for p in written if os.path.dirname(p) not in SHARED_DIRS]
        if written:
            found.append(f"files written outside: {written}")
    elif name == "loopback TCP and UDP":
        pass  # judged by what arrived at the listeners
    elif name == "reading the app's environ":
        if isinstance(value, dict):
            if value.get("found"):
                found.append(f"environments holding OPENAI_API_KEY: {value['found']}")
            if "OPENAI_API_KEY" in json.dumps(value.get("own")):
                found.append("the sandbox's own environment holds the key")
    return found


def leftovers(closed: dict[str, Any]) -> list[str]:
    """What outlived the sandbox's close."""
    found = []
    if closed["daemons"]:
        found.append(f"processes left: {closed['daemons']}")
    if closed["files_outside"]:
        found.append(f"files left: {closed['files_outside']}")
    if closed["base_dir_left"]:
        found.append(f"the sandbox's directory is left: {closed['base_dir']}")
    if not all(closed["invariants"].values()):
        found.append(f"invariants broken: {closed['invariants']}")
    if closed["journal_mode"] != "0o600":
        found.append(f"the journal's mode is {closed['journal_mode']}")
    return found


# -- as a script, for an unprivileged uid -----------------------------------------------------


async def _open(backend: str, world: Any) -> tuple[Any, str]:
    if backend == "bwrap":
        from containers.bwrap_backend import BwrapSandbox

        sandbox: Any = BwrapSandbox(world.report_sandbox)
    else:
        from containers.subprocess_backend import SubprocessSandbox

        sandbox = SubprocessSandbox(world.report_sandbox)
    await sandbox.open()
    return sandbox, f"{backend} sandbox (attacks)"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=("bwrap", "subprocess"), required=True)
    parser.add_argument("--context", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--attacks", nargs="*", default=None)
    args = parser.parse_args()
    with open(args.context) as f:
        ctx = Context(**json.load(f))
    ctx.app_pid = os.getpid()
    prepare_home(ctx.home, ctx.secret)
    names = args.attacks or [a.name for a in ATTACKS]
    records, closed = anyio.run(
        run_attacks, args.backend, lambda world: _open(args.backend, world), ctx, names
    )
    with open(args.out, "w") as f:
        json.dump({"context": asdict(ctx), "records": [asdict(r) for r in records],
                   "closed": closed, "uid": os.getuid()}, f, default=str)


if __name__ == "__main__":
    sys.exit(main())
