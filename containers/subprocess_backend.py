"""Subprocess backend: a long-lived runner process per agent, under OS resource limits.

Unsafe unless run as root, and so never chosen on its own for an ordinary user: without root,
agents' code runs as that user, so it can read what the user can read (~/.ssh, the journal,
the app's /proc/<pid>/environ), write where the user can write, signal the user's other
processes (`kill(-1, 9)` ends the app), and fork without a limit. `--sandbox subprocess
--unsafe-sandbox` asks for it anyway; bubblewrap (containers/bwrap_backend.py, built on this
module) is the safe choice without Docker.

What it enforces, per call (in the forked worker): memory with RLIMIT_DATA and RLIMIT_AS per
process and the host's watchdog over the whole process tree (shared memory included), CPU time
with RLIMIT_CPU behind the wall-clock timeout, file size, a private temp dir as working
directory, a seccomp filter (no ptrace, no process_vm_*, no new namespaces), and a result
pipe read with a bound. As root it also gives each agent its own uid (so RLIMIT_NPROC is a
real pids limit, agents cannot read each other's files, the user's or the 0600 journal, and
nothing of the agent outlives its call) and its own empty network namespace. It cannot keep
that uid out of world-writable directories (/tmp, /var/tmp, /dev/shm): what the agent left
there is removed when its sandbox stops.

What it cannot enforce: a CPU quota below a whole core (that needs cgroups: `set_cpus` is only
recorded; the host still charges the CPU measured); without root, everything listed above.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import shutil
import signal
import stat
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
from anyio.abc import Process

from containers.base import BaseSandbox, Handle, SandboxError, Slot, safe_name
from containers.channel import Channel, RunnerGone, runner_source
from containers.meter import Meter, ProcessTreeMeter
from containers.procfs import kill_tree, process_tree, processes_of_uid
from engine.sandbox import FailureKind, Reporter, SandboxLimits

log = logging.getLogger(__name__)

ENFORCES = (
    "memory per process and for the process tree, CPU time, file size, a private temp dir, "
    "no ptrace; as root also a uid per agent (pids limit, no reads of your files, no writes but its dir "
    "and /tmp-like dirs, which are cleaned when it stops, nothing left running) and no network"
)
CANNOT = (
    "a CPU quota below one core (needs cgroups); without root: no pids limit, no network "
    "isolation without user namespaces, and the code can read and write what you can, see "
    "your processes' environments and signal them"
)
NOFILE = 256  # open files per process of a call
_INSTANCES = itertools.count()
RUNNER_PATH = "/usr/bin:/bin"


def address_space_bytes(limits: SandboxLimits) -> int:
    """RLIMIT_AS for a call's processes: looser than the memory limit (thread stacks and
    malloc arenas reserve address space they never use) yet far below a shared-mmap hog."""
    return 2 * limits.memory_bytes + 256 * 2**20


def _readable_by_others(path: Path) -> bool:
    """Whether an unprivileged uid can reach `path` (every parent searchable, itself readable)."""
    try:
        path = path.resolve()
        mode = os.stat(path).st_mode
        if not mode & stat.S_IROTH:
            return False
        return all(os.stat(parent).st_mode & stat.S_IXOTH for parent in path.parents)
    except OSError:
        return False


def pick_python(for_other_users: bool) -> str:
    """An interpreter for runners: ours, unless runners drop to a uid that cannot reach it."""
    if not for_other_users:
        return sys.executable
    ours_ok = _readable_by_others(Path(sys.executable)) and _readable_by_others(
        Path(sysconfig.get_path("stdlib")) / "os.py"
    )
    if ours_ok:
        return sys.executable
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.path.exists(candidate) and _readable_by_others(Path(candidate)):
            return candidate
    return ""


SHARED_DIRS = ("/tmp", "/var/tmp", "/dev/shm")  # where any uid may write


def remove_files_of(uid: int, dirs: tuple[str, ...] = SHARED_DIRS, depth: int = 3) -> list[str]:
    """Remove what `uid` left in the world-writable directories (and in world-writable
    directories within them): an agent's uid may write there, and nothing of it may stay."""
    removed: list[str] = []
    for top in dirs:
        _sweep(top, uid, depth, removed)
    return removed


def _sweep(path: str, uid: int, depth: int, removed: list[str]) -> None:
    try:
        entries = list(os.scandir(path))
    except OSError:
        return
    for entry in entries:
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if info.st_uid == uid:
            if stat.S_ISDIR(info.st_mode):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
            removed.append(entry.path)
        elif depth > 1 and stat.S_ISDIR(info.st_mode) and info.st_mode & stat.S_IWOTH:
            _sweep(entry.path, uid, depth - 1, removed)


def kill_runner(pid: int | None, uid: int | None) -> None:
    """SIGKILL a runner (None: it was already reaped), what it forked, and (with a dedicated
    uid) anything else of its uid."""
    targets = process_tree(pid) if pid is not None else []
    if uid is not None:
        targets += [p for p in processes_of_uid(uid) if p not in targets]
    for target in targets:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(target, signal.SIGKILL)


@dataclass(slots=True)
class _Runner:
    process: Process
    workdir: Path | None
    uid: int | None
    stderr_path: Path


class SubprocessSandbox(BaseSandbox[Handle]):
    """Agents' code in local runner processes with the limits the OS gives without cgroups."""

    name = "subprocess"
    runner_kind = "process"
    sweeps_shared_dirs = True  # no mount namespace: an agent's uid can write to /tmp and such

    def __init__(
        self,
        reporter: Reporter | None = None,
        *,
        python: str | None = None,
        base_dir: str | os.PathLike[str] | None = None,
        separate_users: bool | None = None,
        uid_base: int | None = None,
        host: str = "local",
    ) -> None:
        super().__init__(reporter, host=host)
        if separate_users is None:
            separate_users = os.geteuid() == 0
        elif separate_users and os.geteuid() != 0:
            raise SandboxError("separate users per agent need root")
        chosen = python or self._pick_python(separate_users)
        if not chosen:
            log.warning("no interpreter reachable by other uids: runners keep our uid")
            separate_users, chosen = False, sys.executable
        self.python = chosen
        self.separate_users = separate_users
        # Distinct per process and per sandbox, so two apps on one machine, or two sandboxes
        # in one app, do not share agents' uids (1,000 agents each).
        self.uid_base = (
            uid_base
            if uid_base is not None
            else 2_000_000 + (os.getpid() % 20_000) * 100_000 + (next(_INSTANCES) % 100) * 1000
        )
        self._base_dir_arg = base_dir
        self.base_dir: Path | None = None
        self._counter = 0
        self._uids: dict[str, int] = {}

    @staticmethod
    def _pick_python(for_other_users: bool) -> str:
        return pick_python(for_other_users)

    @property
    def enforces(self) -> str:
        return ENFORCES if self.separate_users else ENFORCES.split("; as root")[0]

    async def _open(self) -> None:
        parent = str(self._base_dir_arg) if self._base_dir_arg else None
        self.base_dir = Path(tempfile.mkdtemp(prefix=f"ecology-{self.name}-", dir=parent))
        self.base_dir.chmod(0o711)  # agents' uids reach their own dirs, list nothing

    async def _close(self) -> None:
        if self.base_dir is not None:
            await anyio.to_thread.run_sync(shutil.rmtree, self.base_dir, True)

    # -- what a runner is: overridden by the bubblewrap backend ------------------------------

    def _runner_config(self, limits: SandboxLimits, workdir: Path | None, uid: int | None) -> dict[str, Any]:
        return {
            "subreaper": True,
            "isolate_network": not limits.network,
            "uid": uid,
            "gid": uid,
            "workdir": str(workdir) if workdir else None,
            "memory_bytes": limits.memory_bytes,
            "address_space_bytes": address_space_bytes(limits),
            "nproc": limits.pids if uid is not None else None,
            "fsize": limits.tmpfs_bytes,
            "nofile": NOFILE,
            "sole_uid": uid is not None,  # the runner may kill every process of its uid
        }

    def _make_workdir(self, stem: str, uid: int | None) -> Path | None:
        assert self.base_dir is not None
        workdir = self.base_dir / stem
        workdir.mkdir(mode=0o700)
        if uid is not None:
            os.chown(workdir, uid, uid)
        return workdir

    def _command(self, limits: SandboxLimits, workdir: Path | None, config: dict[str, Any]) -> list[str]:
        return [self.python, "-I", "-u", "-c", runner_source(), json.dumps(config)]

    def _process_env(self, workdir: Path | None) -> dict[str, str]:
        # A bare, explicit environment: nothing of ours (API keys!) reaches agents' code.
        home = str(workdir) if workdir else "/nonexistent"
        return {
            "PATH": RUNNER_PATH,
            "LANG": "C.UTF-8",
            "HOME": home,
            "TMPDIR": home,
            "MALLOC_ARENA_MAX": "2",  # fewer 64 MiB arena reservations under RLIMIT_AS
        }

    def _process_user(self, uid: int | None) -> int | None:
        """The uid the host starts the process as (the runner drops to its uid by itself)."""
        return None

    # -- runners --------------------------------------------------------------------------

    async def _spawn(self, slot: Slot[Handle]) -> Handle:
        assert self.base_dir is not None
        index = self._counter
        self._counter += 1
        uid = None
        if self.separate_users:
            # Stable per agent: a replacement first kills everything the old uid still runs.
            uid = self._uids.setdefault(slot.agent_id, self.uid_base + len(self._uids))
        stem = f"{safe_name(slot.agent_id)}-{index}"
        workdir = self._make_workdir(stem, uid)
        stderr_path = self.base_dir / f"{stem}.stderr"
        limits = slot.limits
        config = self._runner_config(limits, workdir, uid)
        user = self._process_user(uid)
        ids: dict[str, Any] = {}
        if user is not None:
            ids = {"user": user, "group": user, "extra_groups": []}
        with open(stderr_path, "wb") as stderr:  # noqa: ASYNC230 - a new local file: no wait
            try:
                process = await anyio.open_process(
                    self._command(limits, workdir, config),
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=stderr,
                    cwd=str(workdir) if workdir else "/",
                    env=self._process_env(workdir),
                    start_new_session=True,
                    **ids,
                )
            except OSError as exc:
                raise SandboxError(f"cannot start a {self.name} runner: {exc}") from exc
        assert process.stdin is not None and process.stdout is not None
        channel = Channel(send=process.stdin, receive=process.stdout)
        runner = _Runner(process=process, workdir=workdir, uid=uid if user is None else user,
                         stderr_path=stderr_path)
        handle = Handle(channel=channel, ident=process.pid, backend_data=runner)
        try:
            handle.facts = await channel.read_hello(self.startup_seconds)
        except (RunnerGone, TimeoutError) as exc:
            tail = self._stderr_tail(runner)
            await self._dispose(handle)
            raise SandboxError(
                f"the runner did not start: {exc}" + (f"; it said: {tail}" if tail else "")
            ) from exc
        except BaseException:
            await self._dispose(handle)
            raise
        if not limits.network and not handle.facts.get("network_isolated"):
            log.warning("agent %s: the %s sandbox cannot block its network", slot.agent_id, self.name)
        return handle

    @staticmethod
    def _stderr_tail(runner: _Runner) -> str:
        try:
            return runner.stderr_path.read_bytes()[-500:].decode("utf-8", "replace").strip()
        except OSError:
            return ""

    def _meter(self, slot: Slot[Handle], handle: Handle) -> Meter:
        return ProcessTreeMeter(int(handle.ident), slot.limits.memory_bytes)

    def _kill_now(self, handle: Handle) -> None:
        runner: _Runner = handle.backend_data
        if runner.process.returncode is None:
            # What runs under our child first: it then reaps them, where an init that does not
            # reap (some containers' PID 1) would keep them as zombies.
            kill_tree(runner.process.pid, spare_root=True)

    async def _dispose(self, handle: Handle) -> None:
        runner: _Runner = handle.backend_data
        process = runner.process
        with anyio.CancelScope(shield=True):
            # Politely first: at the end of its stdin the runner kills and reaps all it
            # started, then exits (bwrap's own process follows it).
            await handle.channel.aclose()
            if process.returncode is None:
                with anyio.move_on_after(1):
                    await process.wait()
            if process.returncode is None:  # busy with a call: what it runs, then itself
                await anyio.to_thread.run_sync(kill_tree, process.pid, True)
                with anyio.move_on_after(1):
                    await process.wait()
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.terminate()
                with anyio.move_on_after(1):
                    await process.wait()
            # A reaped runner's pid may already belong to someone else: not killed by pid.
            alive = process.pid if process.returncode is None else None
            await anyio.to_thread.run_sync(kill_runner, alive, runner.uid)
            with anyio.move_on_after(5):
                await process.wait()
            with contextlib.suppress(Exception):
                await process.aclose()

            def clean() -> None:
                if runner.workdir is not None:
                    shutil.rmtree(runner.workdir, ignore_errors=True)
                runner.stderr_path.unlink(missing_ok=True)
                if self.separate_users and runner.uid is not None and self.sweeps_shared_dirs:
                    # No mount namespace here: what the agent's uid wrote in /tmp and the
                    # like goes now (bubblewrap's sandboxes see private tmpfs instead).
                    remove_files_of(runner.uid)

            await anyio.to_thread.run_sync(clean)

    async def _died_of(self, handle: Handle, error: RunnerGone) -> tuple[FailureKind, str]:
        runner: _Runner = handle.backend_data
        with anyio.move_on_after(1):
            await runner.process.wait()
        code = runner.process.returncode
        if code is None:
            detail = "the runner stopped answering"
        elif code < 0:
            try:
                detail = f"the runner died of {signal.Signals(-code).name}"
            except ValueError:
                detail = f"the runner died of signal {-code}"
        else:
            detail = f"the runner exited with code {code}"
        tail = self._stderr_tail(runner)
        if tail:
            detail += f"; it said: {tail}"
        return "sandbox", f"{detail} [{error}]"

    async def _apply_cpus(self, handle: Handle, cpus: float) -> None:
        # Without cgroups a quota below one core cannot be held cheaply: recorded only.
        log.debug("%s sandbox: cpus=%s recorded, not enforced", self.name, cpus)

    def describe(self) -> dict[str, Any]:
        return {
            "python": self.python,
            "separate_users": self.separate_users,
            "enforces": self.enforces,
            "cannot": CANNOT,
        }
