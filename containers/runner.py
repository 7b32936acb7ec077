"""The runner inside a sandbox: executes code artifacts' `run(**args)`, one JSON line per call.

Standalone on purpose (stdlib only, no imports from this project): the backends pass this
file's source to `python3 -c`, in a container, a bubblewrap sandbox or a subprocess.

Protocol, one JSON object per line. The runner first writes a hello `{"ready": true, ...}`
with facts about itself; then for each request `{"id", "code", "args", "timeout"}` read on
stdin it writes `{"id", "ok", "value"}` or `{"id", "ok": false, "failure", "error"}` on
stdout. It reports no figures: CPU time, memory and wall time are measured by the host.

The code of a call never runs in the runner. Each call runs in a forked worker that cannot
reach the protocol: its stdin/stdout/stderr are /dev/null and every other descriptor is
closed but a private result pipe, which the runner reads with a size bound. The runner is
not dumpable (so neither `/proc/<runner>/fd` nor ptrace reach it), the worker runs under a
seccomp filter that refuses ptrace and the other ways into another process, and where the
backend allows it the worker has a uid of its own. After each call every process the call
started is killed, so nothing it left behind answers the next one.
"""

import contextlib
import ctypes
import errno
import io
import json
import linecache
import math
import os
import platform
import resource
import select
import signal
import struct
import sys
import time
import traceback

MAX_REPLY_BYTES = 1 << 20  # the worker's result, and so every reply, stays under this
MAX_ERROR_CHARS = 2000
RESULT_FD = 3  # where the worker finds its result pipe (every other descriptor is closed)
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
PR_SET_DUMPABLE = 4
PR_SET_SECCOMP = 22
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
SECCOMP_MODE_FILTER = 2
WORKER_FAILURES = ("error", "invalid", "oom", "pids")

# -- the worker's seccomp filter --------------------------------------------------------------
# Refused with EPERM: other processes' memory and tracing (ptrace, process_vm_*, pidfd_getfd,
# kcmp, perf_event_open, bpf, userfaultfd), memory that outlives the call's processes out of
# sight of the memory watchdog (memfd, System V shared memory and message queues), the kernel
# keyring, io_uring, and new namespaces (unshare, setns, clone with CLONE_NEW*). clone3 gets
# ENOSYS, so the C library falls back to clone, whose flags a filter can read.
_SYSCALLS = {
    # machine: (AUDIT_ARCH, {name: number}, clone, clone3)
    "x86_64": (
        0xC000003E,
        {
            "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "kcmp": 312,
            "pidfd_getfd": 438, "perf_event_open": 298, "bpf": 321, "userfaultfd": 323,
            "keyctl": 250, "add_key": 248, "request_key": 249, "memfd_create": 319,
            "memfd_secret": 447, "shmget": 29, "msgget": 68, "unshare": 272, "setns": 308,
            "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
        },
        56,
        435,
    ),
    "aarch64": (
        0xC00000B7,
        {
            "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271, "kcmp": 272,
            "pidfd_getfd": 438, "perf_event_open": 241, "bpf": 280, "userfaultfd": 282,
            "keyctl": 219, "add_key": 217, "request_key": 218, "memfd_create": 279,
            "memfd_secret": 447, "shmget": 194, "msgget": 186, "unshare": 97, "setns": 268,
            "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
        },
        220,
        435,
    ),
}
_CLONE_NAMESPACES = 0x7E020000  # CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET


def _seccomp_program():
    """The filter as classic BPF (bytes and instruction count), or None on an unknown machine."""
    spec = _SYSCALLS.get(platform.machine())
    if spec is None:
        return None
    arch, denied, clone, clone3 = spec
    allow, eperm, enosys = 0x7FFF0000, 0x00050000 | errno.EPERM, 0x00050000 | errno.ENOSYS
    ld, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06
    # (code, jump-if-true label, jump-if-false label, k); labels resolve to relative offsets.
    body = [(ld, None, None, 4), (jeq, None, "deny", arch), (ld, None, None, 0)]
    body.append((jge, "deny", None, 0x40000000))  # the x32 ABI's numbers
    body += [(jeq, "deny", None, number) for number in sorted(denied.values())]
    body += [(jeq, "enosys", None, clone3), (jeq, "clone", None, clone), (ret, None, None, allow)]
    labels = {"clone": len(body)}
    body += [(ld, None, None, 16), (jset, "deny", None, _CLONE_NAMESPACES), (ret, None, None, allow)]
    labels["deny"] = len(body)
    body.append((ret, None, None, eperm))
    labels["enosys"] = len(body)
    body.append((ret, None, None, enosys))
    out = b""
    for index, (code, true, false, k) in enumerate(body):
        jt = labels[true] - index - 1 if true else 0
        jf = labels[false] - index - 1 if false else 0
        out += struct.pack("=HBBI", code, jt, jf, k)
    return out, len(body)


def _libc():
    return ctypes.CDLL(None, use_errno=True)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


_FILTER = None  # (libc, program buffer, struct sock_fprog): built once, before any fork


def _prepare_seccomp():
    global _FILTER
    program = _seccomp_program()
    if program is None:
        return False
    code, count = program
    buffer = ctypes.create_string_buffer(code)
    _FILTER = (_libc(), buffer, _SockFprog(count, ctypes.addressof(buffer)))
    return True


def _install_seccomp():
    """No new privileges, then the filter. False if the kernel refused it."""
    if _FILTER is None and not _prepare_seccomp():
        return False
    libc, _, prog = _FILTER
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return False
    return libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) == 0


def _probe_seccomp():
    """Whether a worker's filter loads here (tried once, in a throwaway child)."""
    pid = os.fork()
    if pid == 0:
        os._exit(0 if _install_seccomp() else 1)
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


# -- the runner's own setup -------------------------------------------------------------------


def _isolate_network():
    """Move into an empty network namespace (only a downed loopback): no socket gets out."""
    libc = _libc()
    if libc.unshare(CLONE_NEWNET) == 0:
        return True
    # Unprivileged: a user namespace of our own grants the right to make a network one.
    uid, gid = os.getuid(), os.getgid()
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0:
        return False
    try:
        with open("/proc/self/setgroups", "w") as f:
            f.write("deny")
        with open("/proc/self/uid_map", "w") as f:
            f.write(f"{uid} {uid} 1")
        with open("/proc/self/gid_map", "w") as f:
            f.write(f"{gid} {gid} 1")
    except OSError:
        pass
    return True


def _prepare(config):
    """Set the runner up before the hello: namespaces and uid where asked, never dumpable."""
    facts = {}
    libc = _libc()
    if config.get("subreaper"):
        # Orphaned descendants of a call come back to us, to be killed and reaped.
        facts["subreaper"] = libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    if config.get("isolate_network"):
        try:
            facts["network_isolated"] = _isolate_network()
        except OSError:
            facts["network_isolated"] = False
    else:
        facts["network_isolated"] = bool(config.get("network_isolated"))
    uid, gid = config.get("uid"), config.get("gid")
    if uid is not None and os.getuid() == 0:
        os.setgroups([])
        os.setgid(gid if gid is not None else uid)
        os.setuid(uid)
    if config.get("workdir"):
        os.chdir(config["workdir"])
    # Not dumpable: no process without CAP_SYS_PTRACE may open /proc/<runner>/fd, read its
    # memory or trace it, even one of our own uid. Set after any uid change, which resets it.
    facts["dumpable"] = libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0
    facts["uid"] = os.getuid()
    worker_uid = config.get("worker_uid")
    facts["worker_uid"] = worker_uid if worker_uid is not None and os.getuid() == 0 else os.getuid()
    facts["pid_namespace"] = os.getpid() == 1
    facts["seccomp"] = _prepare_seccomp() and _probe_seccomp()
    return facts


# -- the worker -------------------------------------------------------------------------------


def _set_limits(config, timeout):
    """Per-call rlimits of the worker, inherited by everything it forks."""
    cpu = max(1, math.ceil(timeout) + 1)  # backstop behind the wall-clock timeout
    limits = [(resource.RLIMIT_CPU, cpu), (resource.RLIMIT_CORE, 0)]
    if config.get("memory_bytes"):
        # DATA counts what the heap really takes; AS, set looser (thread stacks and malloc
        # arenas reserve address space they do not use), also catches shared mappings.
        limits.append((resource.RLIMIT_DATA, int(config["memory_bytes"])))
    if config.get("address_space_bytes"):
        limits.append((resource.RLIMIT_AS, int(config["address_space_bytes"])))
    if config.get("nproc"):
        limits.append((resource.RLIMIT_NPROC, int(config["nproc"])))
    if config.get("fsize"):
        limits.append((resource.RLIMIT_FSIZE, int(config["fsize"])))
    if config.get("nofile"):
        limits.append((resource.RLIMIT_NOFILE, int(config["nofile"])))
    for which, value in limits:
        try:
            _soft, hard = resource.getrlimit(which)
            if hard != resource.RLIM_INFINITY:
                value = min(value, hard)
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError):
            pass


def _drop_to_worker_uid(config):
    """Give the worker a uid of its own, when the runner may (root in its container)."""
    uid = config.get("worker_uid")
    if uid is None or os.getuid() != 0:
        return
    gid = config.get("worker_gid", uid)
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)  # from root to another uid: every capability goes too


def _enter_worker(config, result_fd, timeout):
    """In the forked child, before the agent's code: cut it off from the runner."""
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGTERM, signal.SIGCHLD, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_DFL)
    os.setpgid(0, 0)
    if result_fd != RESULT_FD:
        os.dup2(result_fd, RESULT_FD)
    devnull = os.open(os.devnull, os.O_RDWR)
    # The agent's output must never reach the protocol stream (stdout) nor fill a log
    # (stderr); what went wrong travels in the result.
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.closerange(RESULT_FD + 1, 1 << 20)  # the protocol's pipes and sockets, the wake pipe
    sys.stdin, sys.stdout, sys.stderr = io.StringIO(), io.StringIO(), io.StringIO()
    _set_limits(config, timeout)
    _drop_to_worker_uid(config)
    if config.get("seccomp", True) and not _install_seccomp() and config.get("require_seccomp"):
        os._exit(71)


def _is_pids_error(exc):
    """Did this exception come from hitting the process limit (a fork or thread refused)?"""
    if isinstance(exc, RuntimeError) and "can't start new thread" in str(exc):
        return True
    if not (isinstance(exc, OSError) and exc.errno == errno.EAGAIN):
        return False
    frames = traceback.extract_tb(exc.__traceback__)
    line = (frames[-1].line or "") if frames else ""
    return any(word in line for word in ("fork", "Popen", "spawn", "system", "Thread"))


def _describe(exc):
    """The exception with the artifact's own frames only (not the runner's)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == "<artifact>"]
    lines = traceback.format_list(frames[-5:])
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines)[-MAX_ERROR_CHARS:]


def _work(request):
    """In the worker process: run the artifact and write one JSON result to RESULT_FD."""
    me = os.getpid()
    result = None
    try:
        source = request["code"]
        # Tracebacks then quote the artifact's own lines.
        linecache.cache["<artifact>"] = (len(source), None, source.splitlines(True), "<artifact>")
        code = compile(source, "<artifact>", "exec")
        namespace = {"__name__": "__artifact__"}
        exec(code, namespace)  # noqa: S102 - running the artifact is this process's purpose
        entry = namespace.get("run")
        if not callable(entry):
            result = {"ok": False, "failure": "invalid", "error": "the code defines no run(...)"}
        else:
            result = {"ok": True, "value": entry(**(request.get("args") or {}))}
    except MemoryError:
        result = {"ok": False, "failure": "oom", "error": "MemoryError: the memory limit was hit"}
    except SyntaxError as exc:
        result = {"ok": False, "failure": "invalid", "error": f"SyntaxError: {exc}"}
    except BaseException as exc:  # noqa: BLE001 - the agent's code may raise anything
        if _is_pids_error(exc):
            result = {
                "ok": False,
                "failure": "pids",
                "error": f"{type(exc).__name__}: {exc} (the process limit was hit)",
            }
        elif isinstance(exc, OSError) and exc.errno == errno.ENOMEM:
            result = {"ok": False, "failure": "oom", "error": _describe(exc)}
        else:
            result = {"ok": False, "failure": "error", "error": _describe(exc)}
    if os.getpid() != me:  # a process the agent's code forked came back through here
        os._exit(0)
    try:
        data = json.dumps(result, separators=(",", ":"), allow_nan=False).encode()
    except (TypeError, ValueError, RecursionError) as exc:
        data = json.dumps(
            {"ok": False, "failure": "invalid", "error": f"run(...) returned a value that is "
             f"not JSON: {str(exc)[:200]}"}
        ).encode()
    if len(data) > MAX_REPLY_BYTES:
        data = json.dumps(
            {"ok": False, "failure": "invalid", "error": f"result too large ({len(data)} bytes)"}
        ).encode()
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(RESULT_FD, view) :]
    except OSError:
        pass
    os._exit(0)


# -- reading what a worker left ---------------------------------------------------------------


def _refuse_constant(name):
    raise ValueError(f"{name} is not JSON")


def _finite(text):
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is not a finite number")
    return value


def loads_strict(data):
    """JSON as RFC 8259 has it: no NaN or Infinity, no numbers that overflow to infinity."""
    return json.loads(data, parse_constant=_refuse_constant, parse_float=_finite)


def _checked_result(data):
    """The worker's result, rebuilt from what is allowed in it, or why it is refused."""
    try:
        result = loads_strict(data)
    except (ValueError, RecursionError) as exc:
        return None, f"the call's result is not one JSON object: {str(exc)[:200]}"
    if not isinstance(result, dict) or not isinstance(result.get("ok"), bool):
        return None, "the call's result is not a result object"
    if result["ok"]:
        return {"ok": True, "value": result.get("value")}, None
    failure, error = result.get("failure"), result.get("error")
    if failure not in WORKER_FAILURES or not isinstance(error, str):
        return None, "the call's result names no known failure"
    return {"ok": False, "failure": failure, "error": error[-MAX_ERROR_CHARS:]}, None


def _cgroup_counter(paths, key):
    """A counter from our own cgroup's files (v2 first, then v1), or None if none is visible."""
    for path in paths:
        try:
            with open(path) as f:
                for line in f:
                    name, _, value = line.partition(" ")
                    if name == key:
                        return int(value)
        except (OSError, ValueError):
            continue
    return None


def _oom_kills():
    return _cgroup_counter(
        ("/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory/memory.oom_control"), "oom_kill"
    )


def _pids_refusals():
    return _cgroup_counter(("/sys/fs/cgroup/pids.events", "/sys/fs/cgroup/pids/pids.events"), "max")


def _children_of(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except (OSError, ValueError):
        return []


class Runner:
    def __init__(self, config):
        self.config = config
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        os.set_blocking(self.wake_r, False)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(self.wake_w)
        self.worker = None  # the pid of the call in progress
        self.pid_namespace = os.getpid() == 1

    def shutdown(self, *_):
        """End everything we started and reap it, then exit: no zombie is left for an init
        that may not reap, and no process outlives us."""
        if self.worker:
            self._kill_group(self.worker)
        self._kill_leftovers()
        for child in _children_of(os.getpid()):  # escaped ones came back to us (subreaper)
            self._kill_group(child)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(child, signal.SIGKILL)
        self._reap_children(-1)
        os._exit(0)

    def reap(self, keep=None):
        """Reap every exited child; return the wait status of `keep` if it was among them."""
        found = None
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return found
            if pid == 0:
                return found
            if pid == keep:
                found = status

    def call(self, request):
        timeout = float(request.get("timeout") or 10.0)
        code, args = request.get("code"), request.get("args") or {}
        if not isinstance(code, str) or not isinstance(args, dict) or not timeout > 0:
            return {"ok": False, "failure": "invalid", "error": "a malformed request"}
        # Only a container's cgroup is ours alone; a process's is shared with the host app.
        own_cgroup = bool(self.config.get("cgroup"))
        oom_before = _oom_kills() if own_cgroup else None
        pids_before = _pids_refusals() if own_cgroup else None
        read_fd, write_fd = os.pipe()
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(read_fd)
                _enter_worker(self.config, write_fd, timeout)
                _work(request)
            finally:
                os._exit(70)
        os.close(write_fd)
        os.set_blocking(read_fd, False)
        with contextlib.suppress(OSError):
            os.setpgid(pid, pid)  # races the child's own setpgid; either wins
        self.worker = pid
        data, status, timed_out, too_large = bytearray(), None, False, False
        deadline = time.monotonic() + timeout
        reading = True
        while status is None:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            watched = [read_fd, self.wake_r] if reading else [self.wake_r]
            ready, _, _ = select.select(watched, [], [], left)
            if read_fd in ready:
                chunk = self._read(read_fd, MAX_REPLY_BYTES + 1 - len(data))
                if chunk is None:
                    reading = False  # end of file: the worker closed its end
                else:
                    data += chunk
                    if len(data) > MAX_REPLY_BYTES:
                        too_large = True  # read no further: the runner's memory stays bounded
                        break
            if self.wake_r in ready:
                self._drain_wake()
            status = self.reap(keep=pid)
        self._kill_group(pid)
        self.worker = None
        if status is None:
            _, status = os.waitpid(pid, 0)
        while reading and not too_large:  # what the worker wrote before it ended
            chunk = self._read(read_fd, MAX_REPLY_BYTES + 1 - len(data))
            if not chunk:
                break
            data += chunk
            too_large = len(data) > MAX_REPLY_BYTES
        os.close(read_fd)
        self._reap_children(-pid)  # the call's process group, killed above
        if self._kill_leftovers():
            self._reap_children(-1)
        self._kill_orphans()
        self.reap()
        if too_large:
            return {
                "ok": False,
                "failure": "invalid",
                "error": f"the call's result was over {MAX_REPLY_BYTES} bytes",
            }
        reply = self._reply(bytes(data), status, timed_out, timeout, oom_before)
        if (
            pids_before is not None
            and not reply.get("ok")
            and (_pids_refusals() or 0) > pids_before
        ):
            reply["failure"] = "pids"
            reply["error"] = f"the process limit was hit; {reply.get('error')}"[-MAX_ERROR_CHARS:]
        return reply

    def _reply(self, data, status, timed_out, timeout, oom_before):
        if data:
            result, problem = _checked_result(data)
            if result is not None:
                return result
            if not timed_out:
                return {"ok": False, "failure": "invalid", "error": problem}
        if timed_out:
            return {"ok": False, "failure": "timeout", "error": f"no result within {timeout:g} s"}
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            if sig == signal.SIGXCPU:
                return {"ok": False, "failure": "timeout", "error": "the CPU time limit was hit"}
            if sig == signal.SIGKILL and oom_before is not None:
                oom_after = _oom_kills()
                if oom_after is not None and oom_after > oom_before:
                    return {
                        "ok": False,
                        "failure": "oom",
                        "error": "killed by the kernel's OOM killer: the memory limit was hit",
                    }
            name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else sig
            return {"ok": False, "failure": "error", "error": f"the worker died of {name}"}
        code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1
        return {"ok": False, "failure": "error", "error": f"run(...) exited the process ({code})"}

    @staticmethod
    def _read(fd, limit):
        """Up to `limit` bytes (at least one); b"" when nothing is there yet, None at EOF."""
        try:
            chunk = os.read(fd, max(1, min(limit, 1 << 16)))
        except BlockingIOError:
            return b""
        return chunk if chunk else None

    def _drain_wake(self):
        try:
            while os.read(self.wake_r, 512):
                pass
        except BlockingIOError:
            pass

    def _kill_leftovers(self):
        """Where every other process we can signal is the agent's (we are the init of our own
        pid namespace, or our uid is the agent's alone), kill all of them: nothing a call
        started, even in a new session, outlives it."""
        if not (self.pid_namespace or (self.config.get("sole_uid") and os.getuid() != 0)):
            return False  # never for a uid shared with other programs, never as host root
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(-1, signal.SIGKILL)  # every process we may signal, except ourselves
        return True

    def _kill_orphans(self):
        """Once a call is over every child of ours is something it left behind (a daemon in
        a session of its own, come back to us as subreaper or init): kill them, and the
        orphans they leave in turn, until none is left."""
        for _ in range(100):
            children = _children_of(os.getpid())
            if not children:
                return
            for child in children:
                self._kill_group(child)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(child, signal.SIGKILL)
            self._reap_children(-1, patience=0.2)

    def _reap_children(self, which, patience=1.0):
        """Wait (briefly) for killed children (`which` as in waitpid: -pgid, or -1 for all),
        so they are gone, and their CPU counted, before the reply."""
        deadline = time.monotonic() + patience
        while True:
            try:
                pid, _ = os.waitpid(which, os.WNOHANG)
            except ChildProcessError:
                return
            if pid:
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                return  # still running: a process of another uid we could not kill
            select.select([self.wake_r], [], [], min(left, 0.05))
            self._drain_wake()

    def _kill_group(self, pgid):
        """Kill the call's whole process group: nothing the agent started outlives the call."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)


MAX_LINE_BYTES = MAX_REPLY_BYTES + 4096  # what the host reads at most in one line


def _write_line(out, value):
    line = json.dumps(value, separators=(",", ":"), allow_nan=False).encode()
    if len(line) > MAX_LINE_BYTES - 1:  # re-encoding can lengthen numbers ("1e9" -> "1e+9")
        refused = {"ok": False, "failure": "invalid", "error": "the call's result is too large"}
        line = json.dumps({**refused, "id": value.get("id")}).encode()
    out.write(line + b"\n")
    out.flush()


def main():
    config = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    out = sys.stdout.buffer
    facts = _prepare(config)
    runner = Runner(config)
    if not runner.pid_namespace:
        # As a pid namespace's init we take no SIGTERM: nobody inside may end us that way,
        # and the host ends us by closing stdin or killing the sandbox.
        signal.signal(signal.SIGTERM, runner.shutdown)
    _write_line(out, {"ready": True, "pid": os.getpid(), **facts})
    stdin = sys.stdin.buffer
    while True:
        line = stdin.readline()
        if not line:
            runner.shutdown()
        if not line.strip():
            continue
        request = None
        try:
            request = json.loads(line)
            reply = runner.call(request)
        except Exception as exc:  # noqa: BLE001 - a broken request must not end the runner
            # The runner cannot fork its worker when leftovers of a fork bomb hold every pid.
            failure = "pids" if _is_pids_error(exc) else "sandbox"
            reply = {"ok": False, "failure": failure, "error": f"runner: {exc!r}"[:MAX_ERROR_CHARS]}
        reply["id"] = request.get("id") if isinstance(request, dict) else None
        _write_line(out, reply)


if __name__ == "__main__":
    main()
