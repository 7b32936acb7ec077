"""Bubblewrap backend: each agent's runner in a bwrap sandbox, for machines without Docker.

bubblewrap (`bwrap`, what Flatpak uses) gives an ordinary user new mount, pid, network, ipc,
uts, cgroup and user namespaces without root. Each agent's runner sees:

- a read-only view of /usr (and the /bin, /lib... links into it) and nothing else of the
  host: no home directory, no /etc but the loader's cache, no host processes (a fresh /proc
  of its own pid namespace), no other agent;
- a private tmpfs of its own size on /tmp and /dev/shm, gone when the sandbox ends;
- no network (only a downed loopback) unless the agent's limits ask for one;
- a minimal, explicit environment (no API keys);
- no capabilities, no new privileges, no nested user namespaces.

The runner is the namespace's init (`--as-pid-1`): nothing inside can kill or stop it, and
after each call it kills every other process in the namespace. Limits: RLIMIT_NPROC, counted
in the sandbox's own user namespace, is a real pids limit per agent; memory is held per
process by RLIMIT_DATA/RLIMIT_AS and for the whole tree by the host's watchdog; CPU time is
charged as the host measures it. What it does not give: a CPU quota below a core (no
cgroups; the CPU used is still charged), and memory limits as tight as a cgroup's (the
watchdog samples every 50 ms).

Run as root, each agent's bwrap runs under a uid of its own, so even the sandbox's processes
are not root on the host.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio.to_thread

from containers.base import SandboxError
from containers.channel import runner_source
from containers.subprocess_backend import NOFILE, SubprocessSandbox, address_space_bytes
from engine.sandbox import Reporter, SandboxLimits

SANDBOX_UID = 65534  # who the runner is inside (nobody): the host's uid does not show
SYSTEM_DIRS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
PROBE_TIMEOUT = 10.0
ENFORCES = (
    "new mount, pid, network, ipc and user namespaces; a read-only /usr and a private tmpfs, "
    "no home; a pids limit, memory for the whole process tree, CPU time charged as measured"
)
CANNOT = "a CPU quota below one core (no cgroups; the CPU used is still charged)"


def find_bwrap() -> str | None:
    """The bwrap executable: $ECOLOGY_BWRAP if set (empty: none), else bwrap on PATH."""
    override = os.environ.get("ECOLOGY_BWRAP")
    if override is not None:
        return override if override and os.access(override, os.X_OK) else None
    return shutil.which("bwrap")


def bwrap_python() -> str:
    """An interpreter the sandbox can run: the system's, under /usr, if there is one."""
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.access(candidate, os.X_OK):
            return candidate
    return os.path.realpath(getattr(sys, "_base_executable", sys.executable))


def system_binds() -> list[str]:
    """bwrap arguments for a read-only /usr and the top-level links into it (merged /usr),
    or read-only binds where they are real directories."""
    args = ["--ro-bind", "/usr", "/usr"]
    for path in SYSTEM_DIRS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    if os.path.exists("/etc/ld.so.cache"):
        args += ["--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    return args


def sandbox_arguments(limits: SandboxLimits, python: str) -> list[str]:
    """Everything before the runner's own command line."""
    args = [
        "--unshare-all", "--unshare-user", "--disable-userns",
        "--die-with-parent", "--new-session", "--as-pid-1",
        "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--hostname", "sandbox",
        "--clearenv",
        "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "LANG", "C.UTF-8",
        "--setenv", "HOME", "/tmp", "--setenv", "TMPDIR", "/tmp",
        "--setenv", "MALLOC_ARENA_MAX", "2",
    ]
    if limits.network:
        args.append("--share-net")
    args += system_binds()
    prefix = os.path.dirname(os.path.dirname(python))  # an interpreter outside /usr
    if not python.startswith("/usr/"):
        args += ["--ro-bind", prefix, prefix]
    size = str(limits.tmpfs_bytes)
    args += [
        "--proc", "/proc",
        "--dev", "/dev",
        "--size", size, "--tmpfs", "/tmp",
        "--size", size, "--tmpfs", "/dev/shm",
        "--remount-ro", "/dev",  # /dev/shm, mounted on it, stays writable
        "--remount-ro", "/",
        "--chdir", "/tmp",
    ]
    return args


class BwrapSandbox(SubprocessSandbox):
    """Agents' code in bubblewrap sandboxes: namespaces without root, limits without cgroups."""

    name = "bwrap"
    sweeps_shared_dirs = False  # its /tmp and /dev/shm are private tmpfs, gone with it

    def __init__(
        self,
        reporter: Reporter | None = None,
        *,
        bwrap: str | None = None,
        python: str | None = None,
        base_dir: str | os.PathLike[str] | None = None,
        separate_users: bool | None = None,
        uid_base: int | None = None,
        host: str = "local",
    ) -> None:
        found = bwrap or find_bwrap()
        if not found:
            raise SandboxError("bubblewrap is not installed (apt install bubblewrap)")
        self.bwrap = found
        super().__init__(
            reporter, python=python or bwrap_python(), base_dir=base_dir,
            separate_users=separate_users, uid_base=uid_base, host=host,
        )

    @staticmethod
    def _pick_python(for_other_users: bool) -> str:
        return bwrap_python()

    @property
    def enforces(self) -> str:
        return ENFORCES + ("; a uid of its own per agent" if self.separate_users else "")

    async def _open(self) -> None:
        await super()._open()
        user = self._process_user(self.uid_base - 1)
        problem = await anyio.to_thread.run_sync(probe, self.bwrap, self.python, user)
        if problem:
            await self._close()  # the directory _open made
            raise SandboxError(problem)

    def _runner_config(
        self, limits: SandboxLimits, workdir: Path | None, uid: int | None
    ) -> dict[str, Any]:
        return {
            "network_isolated": not limits.network,
            "memory_bytes": limits.memory_bytes,
            "address_space_bytes": address_space_bytes(limits),
            # Counted in the sandbox's own user namespace: the runner and its calls only.
            "nproc": limits.pids,
            "fsize": limits.tmpfs_bytes,
            "nofile": NOFILE,
        }

    def _make_workdir(self, stem: str, uid: int | None) -> Path | None:
        return None  # the sandbox's /tmp is its own tmpfs

    def _command(
        self, limits: SandboxLimits, workdir: Path | None, config: dict[str, Any]
    ) -> list[str]:
        return [
            self.bwrap, *sandbox_arguments(limits, self.python),
            self.python, "-I", "-u", "-c", runner_source(), json.dumps(config),
        ]

    def _process_env(self, workdir: Path | None) -> dict[str, str]:
        return {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}  # bwrap clears it anyway

    def _process_user(self, uid: int | None) -> int | None:
        # As root, bwrap itself runs as the agent's uid: unprivileged, so its user
        # namespace maps nobody to root, and the sandbox's processes are not root anywhere.
        return uid if self.separate_users else None

    def describe(self) -> dict[str, Any]:
        return {
            "bwrap": self.bwrap,
            "python": self.python,
            "separate_users": self.separate_users,
            "enforces": self.enforces,
            "cannot": CANNOT,
        }


def probe(bwrap: str, python: str, user: int | None = None) -> str | None:
    """Why bwrap cannot make a sandbox here (user namespaces disabled, ...), or None if it can.
    Blocking (a few ms): runs the sandbox's own arguments with `python3 -c pass`."""
    command = [bwrap, *sandbox_arguments(SandboxLimits(), python), python, "-I", "-c", "pass"]
    ids: dict[str, Any] = {}
    if user is not None:
        ids = {"user": user, "group": user, "extra_groups": []}
    try:
        done = subprocess.run(
            command, capture_output=True, timeout=PROBE_TIMEOUT, env={"PATH": "/usr/bin:/bin"},
            cwd="/", check=False, **ids,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"bubblewrap at {bwrap} cannot run: {exc}"
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", "replace").strip()[-300:]
        return f"bubblewrap at {bwrap} cannot make a sandbox here: {said or done.returncode}"
    return None
