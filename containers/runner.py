"""The runner inside a sandbox: executes code artifacts' `run(**args)`, one JSON line per call.

Standalone on purpose (stdlib only, no imports from this project): the backends pass this
file's source to `python3 -c`, in a container or a subprocess. Protocol, one JSON object per
line: the runner first writes a hello `{"ready": true, ...}`; then for each request
`{"id", "code", "args", "timeout"}` read on stdin it writes `{"id", "ok", "value" | "failure",
"error", "cpu_seconds", "peak_memory_bytes", "wall_seconds"}` on stdout. Each call runs in a
forked worker, so a crash, an OOM kill or a fork bomb ends the worker and not the runner, and
the CPU time the call really used (worker and all its descendants) is measured by the kernel.
"""

import contextlib
import errno
import json
import linecache
import math
import os
import resource
import select
import signal
import sys
import time
import traceback

MAX_REPLY_BYTES = 1 << 20
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
PR_SET_CHILD_SUBREAPER = 36


def _libc():
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


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
    """Subprocess mode: what a container would give, as far as the OS allows without one."""
    facts = {}
    if config.get("subreaper"):
        # Orphaned descendants of a call come back to us, to be killed and reaped.
        facts["subreaper"] = _libc().prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    if config.get("container"):
        # Docker already gave us network_mode=none (or a network, if asked for).
        facts["network_isolated"] = not config.get("network", False)
    elif not config.get("network", True):
        try:
            facts["network_isolated"] = _isolate_network()
        except OSError:
            facts["network_isolated"] = False
    uid, gid = config.get("uid"), config.get("gid")
    if uid is not None and os.getuid() == 0:
        os.setgroups([])
        os.setgid(gid if gid is not None else uid)
        os.setuid(uid)
    if config.get("workdir"):
        os.chdir(config["workdir"])
    facts["uid"] = os.getuid()
    return facts


def _set_limits(config, timeout):
    """Per-call rlimits of the worker. In a container the cgroup is the real limit."""
    cpu = max(1, math.ceil(timeout) + 1)  # backstop behind the wall-clock timeout
    limits = [(resource.RLIMIT_CPU, cpu)]
    if config.get("memory_bytes"):
        # DATA, not AS: it counts what the heap really takes, not address space that thread
        # stacks and malloc arenas only reserve.
        limits.append((resource.RLIMIT_DATA, int(config["memory_bytes"])))
    if config.get("nproc"):
        limits.append((resource.RLIMIT_NPROC, int(config["nproc"])))
    if config.get("fsize"):
        limits.append((resource.RLIMIT_FSIZE, int(config["fsize"])))
    for which, value in limits:
        try:
            soft, hard = resource.getrlimit(which)
            if hard != resource.RLIM_INFINITY:
                value = min(value, hard)
            resource.setrlimit(which, (value, value if hard == resource.RLIM_INFINITY else hard))
        except (ValueError, OSError):
            pass


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
    return "".join(lines)[-2000:]


def _work(request, config, out_fd):
    """In the worker process: run the artifact and write one JSON reply to out_fd."""
    me = os.getpid()
    reply = None
    try:
        source = request["code"]
        # Tracebacks then quote the artifact's own lines.
        linecache.cache["<artifact>"] = (len(source), None, source.splitlines(True), "<artifact>")
        code = compile(source, "<artifact>", "exec")
        namespace = {"__name__": "__artifact__"}
        exec(code, namespace)
        entry = namespace.get("run")
        if not callable(entry):
            reply = {"ok": False, "failure": "invalid", "error": "the code defines no run(...)"}
        else:
            value = entry(**(request.get("args") or {}))
            try:
                reply = {"ok": True, "value": value}
                json.dumps(reply)
            except (TypeError, ValueError) as exc:
                reply = {
                    "ok": False,
                    "failure": "invalid",
                    "error": f"run(...) returned a value that is not JSON: {exc}",
                }
    except MemoryError:
        reply = {"ok": False, "failure": "oom", "error": "MemoryError: the memory limit was hit"}
    except SyntaxError as exc:
        reply = {"ok": False, "failure": "invalid", "error": f"SyntaxError: {exc}"}
    except BaseException as exc:  # noqa: BLE001 - the agent's code may raise anything
        failure = "pids" if _is_pids_error(exc) else "error"
        if failure == "pids":
            error = f"{type(exc).__name__}: {exc} (the process limit was hit)"
        else:
            error = _describe(exc)
        reply = {"ok": False, "failure": failure, "error": error}
    if os.getpid() != me:  # a process the agent's code forked came back through here
        os._exit(0)
    data = json.dumps(reply, separators=(",", ":"), default=str).encode()
    if len(data) > MAX_REPLY_BYTES:
        data = json.dumps(
            {"ok": False, "failure": "invalid", "error": f"reply too large ({len(data)} bytes)"}
        ).encode()
    view = memoryview(data + b"\n")
    while view:
        view = view[os.write(out_fd, view) :]
    os._exit(0)


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


def _rusage_seconds(ru):
    return ru.ru_utime + ru.ru_stime


class Runner:
    def __init__(self, config):
        self.config = config
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        os.set_blocking(self.wake_r, False)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(self.wake_w)
        self.orphan_cpu = 0.0  # CPU of stray descendants reaped while a call runs
        self.worker = None  # the pid of the call in progress

    def shutdown(self, *_):
        """End everything we started and reap it, then exit: no zombie is left for an init
        that may not reap (a container's PID 1, some VMs), and no process outlives us."""
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
        """Reap every exited child; return (status, rusage) of `keep` if it was among them."""
        found = None
        while True:
            try:
                pid, status, ru = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return found
            if pid == 0:
                return found
            if pid == keep:
                found = (status, ru)
            else:
                self.orphan_cpu += _rusage_seconds(ru)

    def call(self, request):
        timeout = float(request.get("timeout") or 10.0)
        started = time.monotonic()
        # Only a container's cgroup is ours alone; a subprocess's is shared with the host app.
        own_cgroup = bool(self.config.get("container"))
        oom_before = _oom_kills() if own_cgroup else None
        pids_before = _pids_refusals() if own_cgroup else None
        self.orphan_cpu = 0.0
        read_fd, write_fd = os.pipe()
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                os.close(read_fd)
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                os.setpgid(0, 0)
                devnull = os.open(os.devnull, os.O_RDWR)
                # The agent's output must never reach the protocol stream (stdout), nor fill
                # a log (stderr): what went wrong travels in the reply.
                for fd in (0, 1, 2):
                    os.dup2(devnull, fd)
                import io

                sys.stdin, sys.stdout, sys.stderr = io.StringIO(), io.StringIO(), io.StringIO()
                _set_limits(self.config, timeout)
                _work(request, self.config, write_fd)
            finally:
                os._exit(70)
        os.close(write_fd)
        os.set_blocking(read_fd, False)
        try:
            os.setpgid(pid, pid)  # races the child's own setpgid; either wins
        except OSError:
            pass
        self.worker = pid
        chunks, exited, timed_out = [], None, False
        deadline = started + timeout
        while exited is None:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            ready, _, _ = select.select([read_fd, self.wake_r], [], [], left)
            if read_fd in ready:
                chunk = self._read(read_fd)
                if chunk:
                    chunks.append(chunk)
            if self.wake_r in ready:
                self._drain_wake()
            exited = self.reap(keep=pid)
        self._kill_group(pid)
        self.worker = None
        if exited is None:
            _, status, ru = os.wait4(pid, 0)
            exited = (status, ru)
        status, ru = exited
        while True:  # what the worker wrote before it ended
            chunk = self._read(read_fd)
            if not chunk:
                break
            chunks.append(chunk)
        os.close(read_fd)
        self._reap_children(-pid)  # the call's process group, killed above
        if self._kill_leftovers():
            self._reap_children(-1)
        self.reap()
        wall = time.monotonic() - started
        reply = self._reply(b"".join(chunks), status, timed_out, timeout, oom_before)
        if (
            pids_before is not None
            and not reply.get("ok")
            and (_pids_refusals() or 0) > pids_before
        ):
            reply["failure"] = "pids"
            reply["error"] = f"the process limit was hit; {reply.get('error')}"
        reply["cpu_seconds"] = round(_rusage_seconds(ru) + self.orphan_cpu, 6)
        reply["peak_memory_bytes"] = ru.ru_maxrss * 1024
        reply["wall_seconds"] = round(wall, 6)
        return reply

    def _reply(self, data, status, timed_out, timeout, oom_before):
        line = data.split(b"\n", 1)[0]
        if line:
            try:
                return json.loads(line)
            except ValueError:
                pass
        if timed_out:
            return {"ok": False, "failure": "timeout", "error": f"no result within {timeout:g} s"}
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            if sig == signal.SIGXCPU:
                return {"ok": False, "failure": "timeout", "error": "the CPU time limit was hit"}
            if sig == signal.SIGKILL:
                oom_after = _oom_kills() if oom_before is not None else None
                if oom_before is None or oom_after is None or oom_after > oom_before:
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
    def _read(fd):
        try:
            return os.read(fd, 1 << 16)
        except BlockingIOError:
            return b""

    def _drain_wake(self):
        try:
            while os.read(self.wake_r, 512):
                pass
        except BlockingIOError:
            pass

    def _kill_leftovers(self):
        """Where every process of our uid is the agent's (a container, or a uid of its own),
        kill all of them but us: nothing a call started, even in a new session, outlives it."""
        uid = os.getuid()
        if not self.config.get("sole_uid") or uid == 0:
            return False  # never as root, never for a uid shared with other programs
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(-1, signal.SIGKILL)  # every process we may signal, except ourselves
        return True

    def _reap_children(self, which, patience=1.0):
        """Wait (briefly) for killed children (`which` as in waitpid: -pgid, or -1 for all),
        so the CPU they burnt is charged to this call and not to the next."""
        deadline = time.monotonic() + patience
        while True:
            try:
                pid, _, ru = os.wait4(which, os.WNOHANG)
            except ChildProcessError:
                return
            if pid:
                self.orphan_cpu += _rusage_seconds(ru)
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                return  # still running: a process of another uid we could not kill
            select.select([self.wake_r], [], [], min(left, 0.05))
            self._drain_wake()

    def _kill_group(self, pgid):
        """Kill the call's whole process group: nothing the agent started outlives the call."""
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def main():
    config = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    facts = _prepare(config)
    runner = Runner(config)
    signal.signal(signal.SIGTERM, runner.shutdown)
    out = sys.stdout
    out.write(json.dumps({"ready": True, "pid": os.getpid(), **facts}) + "\n")
    out.flush()
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
            request = request if isinstance(request, dict) else {}
            # The runner cannot fork its worker when leftovers of a fork bomb hold every pid.
            failure = "pids" if _is_pids_error(exc) else "sandbox"
            reply = {"ok": False, "failure": failure, "error": f"runner: {exc!r}"}
        reply["id"] = request.get("id")
        out.write(json.dumps(reply, separators=(",", ":"), default=str) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
