"""Subprocess backend: a long-lived runner process per agent, under OS resource limits.

For machines without a Docker daemon. What it enforces, per call (in the forked worker):
memory with RLIMIT_DATA (per process, not summed over the processes a call forks), CPU time
with RLIMIT_CPU as a backstop behind the wall-clock timeout, file size with RLIMIT_FSIZE, and a
fresh private temp dir as the working directory. As root it also gives each agent its own uid
(so RLIMIT_NPROC is a real per-agent pids limit, and agents cannot read each other's files or
write the system's) and its own empty network namespace (no socket reaches anything).

What it cannot enforce: a CPU quota below a whole core (that needs cgroups: `set_cpus` is only
recorded); a pids limit when not root (RLIMIT_NPROC counts every process of the user); a
read-only filesystem (a non-root runner can write wherever its user can); network isolation
when neither root nor unprivileged user namespaces are available (the runner's hello says
`network_isolated`).
"""

from __future__ import annotations

import contextlib
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
from engine.sandbox import FailureKind, Reporter

log = logging.getLogger(__name__)

ENFORCES = (
    "memory per process (RLIMIT_DATA), CPU time (RLIMIT_CPU), file size, a private temp dir; "
    "as root also a uid per agent (pids limit, no writes outside its dir) and no network"
)
CANNOT = (
    "a CPU quota below one core (needs cgroups); pids, read-only files and no-network without root"
)


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


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except (OSError, ValueError):
        return []


def process_tree(pid: int) -> list[int]:
    """pid and all its descendants still alive (via /proc/<pid>/task/<pid>/children)."""
    seen, todo = [], [pid]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.append(current)
        todo.extend(_children(current))
    return seen


def _processes_of_uid(uid: int) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def kill_runner(pid: int | None, uid: int | None) -> None:
    """SIGKILL a runner (None: it was already reaped), what it forked, and (with a dedicated
    uid) anything else of its uid."""
    targets = process_tree(pid) if pid is not None else []
    if uid is not None:
        targets += [p for p in _processes_of_uid(uid) if p not in targets]
    for target in targets:
        try:
            os.kill(target, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


@dataclass(slots=True)
class _Runner:
    process: Process
    workdir: Path
    uid: int | None
    stderr_path: Path


class SubprocessSandbox(BaseSandbox[Handle]):
    """Agents' code in local runner processes with the limits the OS gives without cgroups."""

    name = "subprocess"
    runner_kind = "process"

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
        chosen = python or pick_python(separate_users)
        if not chosen:
            log.warning("no interpreter reachable by other uids: runners keep our uid")
            separate_users, chosen = False, sys.executable
        self.python = chosen
        self.separate_users = separate_users
        # Distinct per process, so two apps on one machine do not share agents' uids.
        self.uid_base = (
            uid_base if uid_base is not None else 2_000_000 + (os.getpid() % 100_000) * 1000
        )
        self._base_dir_arg = base_dir
        self.base_dir: Path | None = None
        self._counter = 0
        self._uids: dict[str, int] = {}

    @property
    def enforces(self) -> str:
        return ENFORCES if self.separate_users else ENFORCES.split("; as root")[0]

    async def _open(self) -> None:
        parent = str(self._base_dir_arg) if self._base_dir_arg else None
        self.base_dir = Path(tempfile.mkdtemp(prefix="ecology-sandbox-", dir=parent))
        self.base_dir.chmod(0o711)  # agents' uids reach their own dirs, list nothing

    async def _close(self) -> None:
        if self.base_dir is not None:
            await anyio.to_thread.run_sync(shutil.rmtree, self.base_dir, True)

    async def _spawn(self, slot: Slot[Handle]) -> Handle:
        assert self.base_dir is not None
        index = self._counter
        self._counter += 1
        uid = None
        if self.separate_users:
            # Stable per agent: a replacement first kills everything the old uid still runs.
            uid = self._uids.setdefault(slot.agent_id, self.uid_base + len(self._uids))
        stem = f"{safe_name(slot.agent_id)}-{index}"
        workdir = self.base_dir / stem
        workdir.mkdir(mode=0o700)
        if uid is not None:
            os.chown(workdir, uid, uid)
        stderr_path = self.base_dir / f"{stem}.stderr"
        limits = slot.limits
        config = {
            "subreaper": True,
            "network": limits.network,
            "uid": uid,
            "gid": uid,
            "workdir": str(workdir),
            "memory_bytes": limits.memory_bytes,
            "nproc": limits.pids if uid is not None else None,
            "fsize": limits.tmpfs_bytes,
            "sole_uid": uid is not None,  # the runner may kill every process of its uid
        }
        # A bare environment: nothing of ours (API keys!) leaks into agents' code.
        env = {
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "HOME": str(workdir),
            "TMPDIR": str(workdir),
        }
        with open(stderr_path, "wb") as stderr:
            try:
                process = await anyio.open_process(
                    [self.python, "-I", "-u", "-c", runner_source(), json.dumps(config)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=stderr,
                    cwd=str(workdir),
                    env=env,
                    start_new_session=True,
                )
            except OSError as exc:
                raise SandboxError(f"cannot start a runner with {self.python}: {exc}") from exc
        assert process.stdin is not None and process.stdout is not None
        channel = Channel(send=process.stdin, receive=process.stdout)
        runner = _Runner(process=process, workdir=workdir, uid=uid, stderr_path=stderr_path)
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
            log.warning("agent %s: the subprocess sandbox cannot block its network", slot.agent_id)
        return handle

    @staticmethod
    def _stderr_tail(runner: _Runner) -> str:
        try:
            return runner.stderr_path.read_bytes()[-500:].decode("utf-8", "replace").strip()
        except OSError:
            return ""

    async def _dispose(self, handle: Handle) -> None:
        runner: _Runner = handle.backend_data
        with anyio.CancelScope(shield=True):
            # Politely first: on SIGTERM the runner kills and reaps all it started, so no
            # orphan is left as a zombie for an init that does not reap.
            if runner.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    runner.process.terminate()
                with anyio.move_on_after(1):
                    await runner.process.wait()
            # A reaped runner's pid may already belong to someone else: not killed by pid.
            alive = runner.process.pid if runner.process.returncode is None else None
            await anyio.to_thread.run_sync(kill_runner, alive, runner.uid)
            await handle.channel.aclose()
            with anyio.move_on_after(5):
                await runner.process.wait()
            try:
                await runner.process.aclose()
            except Exception:  # noqa: BLE001
                pass

            def clean() -> None:
                shutil.rmtree(runner.workdir, ignore_errors=True)
                runner.stderr_path.unlink(missing_ok=True)

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
        log.debug("subprocess sandbox: cpus=%s recorded, not enforced", cpus)

    def describe(self) -> dict[str, Any]:
        return {
            "python": self.python,
            "separate_users": self.separate_users,
            "enforces": self.enforces,
            "cannot": CANNOT,
        }
