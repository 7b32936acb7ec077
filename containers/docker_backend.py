"""Docker backend: one long-lived, locked-down container per agent, its runner as PID 1.

The host talks to the runner over the container's attached stdin/stdout (one hijacked socket,
opened before the container starts), so a warm call costs a few milliseconds and no `docker
exec`. Every docker SDK call runs in a worker thread; the socket itself is read on the loop.

The runner is root inside the container with three capabilities only (setuid, setgid, kill):
enough to run each call's code as nobody, a uid that can neither signal, trace nor read the
runner, and to kill whatever a call left behind. What a call is charged comes from the
container's cgroup on the host (CPU time in ns, memory peak), never from the runner.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import socket
import ssl
from typing import Any

import anyio
import anyio.to_thread
from anyio.abc import SocketStream, UNIXSocketStream

from containers.base import BaseSandbox, Handle, SandboxError, Slot, safe_name
from containers.channel import Channel, DockerFrames, RunnerGone, runner_source
from containers.images import AGENT_IMAGE
from containers.meter import CgroupMeter, Meter, QuotaMeter
from containers.stats import CgroupFiles
from containers.subprocess_backend import NOFILE, address_space_bytes
from engine.sandbox import FailureKind, Reporter, SandboxLimits

log = logging.getLogger(__name__)

WORLD_LABEL = "ecology.world"
AGENT_LABEL = "ecology.agent"
CPU_PERIOD_US = 100_000  # CFS period: quota = cpus * period
MIN_QUOTA_US = 1_000  # the kernel refuses less than 1 ms per period
RUNNER_USER = "0:0"  # root in the container, with only RUNNER_CAPS
RUNNER_CAPS = ["SETUID", "SETGID", "KILL"]  # to run calls as nobody, and to kill their leftovers
WORKER_UID = 65534  # nobody: who each call's code runs as


def cpu_quota(cpus: float, period: int = CPU_PERIOD_US) -> int:
    """The CFS quota (µs per period) that holds a container to `cpus` cores."""
    return max(MIN_QUOTA_US, round(cpus * period))


def quota_cores(cpus: float, period: int = CPU_PERIOD_US) -> float:
    """The cores a container really gets: at least the kernel's smallest quota."""
    return cpu_quota(cpus, period) / period


def container_settings(
    world_id: str, agent_id: str, limits: SandboxLimits, *, period: int = CPU_PERIOD_US
) -> dict[str, Any]:
    """Keyword arguments for `containers.create`: SPEC §8's limits, nothing more."""
    config = {
        "cgroup": True,  # the container's cgroup is its own: OOM and pids counters are ours
        "network_isolated": not limits.network,
        "worker_uid": WORKER_UID,
        "worker_gid": WORKER_UID,
        "memory_bytes": limits.memory_bytes,
        "address_space_bytes": address_space_bytes(limits),
        "fsize": limits.tmpfs_bytes,
        "nofile": NOFILE,
    }
    return {
        "command": ["python3", "-I", "-u", "-c", runner_source(), json.dumps(config)],
        "labels": {WORLD_LABEL: world_id, AGENT_LABEL: agent_id, "ecology.backend": "docker"},
        # With stdin_open the SDK also sets StdinOnce: when our attach stream goes (the app
        # ended, even by a crash) the runner reads EOF and its container stops; the next
        # open() removes it (cleanup_orphans).
        "stdin_open": True,
        "tty": False,
        "user": RUNNER_USER,
        "working_dir": "/tmp",
        "network_mode": "bridge" if limits.network else "none",
        "read_only": True,
        "tmpfs": {"/tmp": f"rw,nosuid,nodev,noexec,size={limits.tmpfs_bytes},mode=1777"},
        "mem_limit": limits.memory_bytes,
        "memswap_limit": limits.memory_bytes,  # equal: no swap
        "pids_limit": limits.pids,
        "cpu_period": period,
        "cpu_quota": cpu_quota(limits.cpus, period),
        "security_opt": ["no-new-privileges"],
        "cap_drop": ["ALL"],
        "cap_add": RUNNER_CAPS,
        # A bare, explicit environment: nothing of the host's (API keys!) gets in.
        "environment": {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
                        "HOME": "/tmp", "MALLOC_ARENA_MAX": "2"},
        # Replies travel over the attach stream; logging them too would only fill a disk.
        "log_config": {"type": "none", "config": {}},
    }


def connect(timeout: float = 30.0, max_pool_size: int = 32) -> Any:
    """A docker client from the environment (DOCKER_HOST etc.). Blocking: call in a thread."""
    import docker

    return docker.from_env(timeout=timeout, max_pool_size=max_pool_size)


def remove_world_containers(client: Any, world_id: str) -> int:
    """Remove every container labelled with this world. Blocking: call in a thread."""
    import docker.errors

    removed = 0
    for container in client.containers.list(
        all=True, filters={"label": f"{WORLD_LABEL}={world_id}"}
    ):
        try:
            container.remove(force=True)
            removed += 1
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            # "removal already in progress" and the like: it is going away anyway.
            log.warning("cannot remove orphan container %s: %s", container.short_id, exc)
    return removed


async def cleanup_orphans(world_id: str, client: Any | None = None) -> int:
    """Remove containers of this world left behind by an earlier run that crashed."""
    if client is None:
        client = await anyio.to_thread.run_sync(connect)
    return await anyio.to_thread.run_sync(remove_world_containers, client, world_id)


class DockerSandbox(BaseSandbox[Handle]):
    """Agents' code in Docker containers with real CPU, memory, pids and network limits."""

    name = "docker"
    runner_kind = "container"

    def __init__(
        self,
        world_id: str,
        reporter: Reporter | None = None,
        *,
        image: str = AGENT_IMAGE,
        client: Any | None = None,
        cpu_period: int = CPU_PERIOD_US,
        max_parallel: int = 8,
        host: str = "local",
        owns_client: bool | None = None,
    ) -> None:
        super().__init__(reporter, host=host)
        self.world_id = world_id
        self.image = image
        self.client = client
        self.cpu_period = cpu_period
        self.max_parallel = max_parallel
        self.orphans_removed = 0
        self._cgroups: dict[str, CgroupFiles | None] = {}  # container id -> where its counters are
        self._limiter: anyio.CapacityLimiter | None = None
        self._owns_client = client is None if owns_client is None else owns_client

    async def _thread(self, fn: Any, *args: Any) -> Any:
        assert self._limiter is not None
        return await anyio.to_thread.run_sync(fn, *args, limiter=self._limiter)

    async def _open(self) -> None:
        self._limiter = anyio.CapacityLimiter(self.max_parallel)
        if self.client is None:
            self.client = await self._thread(connect)
        self.orphans_removed = await self._thread(
            remove_world_containers, self.client, self.world_id
        )
        if self.orphans_removed:
            log.warning(
                "removed %d orphan container(s) of world %s", self.orphans_removed, self.world_id
            )

    async def _close(self) -> None:
        if self._owns_client and self.client is not None:
            await self._thread(self.client.close)

    # -- runners --------------------------------------------------------------------------

    def _create_and_attach(self, slot: Slot[Handle]) -> tuple[Any, socket.socket]:
        """Create the container, attach to it, then start it (attaching first loses nothing)."""
        import docker.errors

        world, agent = safe_name(self.world_id, 24), safe_name(slot.agent_id, 24)
        name = f"ecology-{world}-{agent}-{secrets.token_hex(3)}"
        settings = container_settings(
            self.world_id, slot.agent_id, slot.limits, period=self.cpu_period
        )
        assert self.client is not None
        try:
            container = self.client.containers.create(self.image, name=name, **settings)
        except docker.errors.ImageNotFound as exc:
            raise SandboxError(
                f"the agent image {self.image} is missing: run `ecology containers build`"
            ) from exc
        except docker.errors.APIError as exc:
            raise SandboxError(f"cannot create a container: {exc}") from exc
        try:
            attached = container.attach_socket(
                params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
            )
            raw = getattr(attached, "_sock", attached)
            if isinstance(raw, ssl.SSLSocket) or not isinstance(raw, socket.socket):
                raise SandboxError("only unix or plain TCP Docker hosts are supported (not TLS)")
            # Our own descriptor: the SDK's response object may close its copy when collected.
            sock = raw.dup()
            with contextlib.suppress(Exception):
                attached.close()
            container.start()
            return container, sock
        except BaseException as exc:
            with contextlib.suppress(Exception):
                container.remove(force=True)
            if isinstance(exc, docker.errors.APIError):
                raise SandboxError(f"cannot start a container: {exc}") from exc
            raise

    async def _spawn(self, slot: Slot[Handle]) -> Handle:
        container, sock = await self._thread(self._create_and_attach, slot)
        try:
            if sock.family == socket.AF_UNIX:
                stream: SocketStream = await UNIXSocketStream.from_socket(sock)
            else:
                stream = await SocketStream.from_socket(sock)
        except BaseException:
            sock.close()
            await self._remove(container)
            raise
        channel = Channel(send=stream, receive=DockerFrames(stream))
        handle = Handle(channel=channel, ident=container.id, backend_data=container)
        try:
            handle.facts = await channel.read_hello(self.startup_seconds)
        except (RunnerGone, TimeoutError) as exc:
            tail = channel.stderr_tail
            await self._dispose(handle)
            raise SandboxError(
                f"the runner in container {container.short_id} did not start: {exc}"
                + (f"; it said: {tail[-500:]}" if tail else "")
            ) from exc
        except BaseException:
            await self._dispose(handle)
            raise
        # Found once per container: a remote host's are not visible here (QuotaMeter then).
        self._cgroups[container.id] = CgroupFiles.find(container.id)
        return handle

    def _meter(self, slot: Slot[Handle], handle: Handle) -> Meter:
        fallback = QuotaMeter(quota_cores(slot.limits.cpus, self.cpu_period))
        files = self._cgroups.get(str(handle.ident))
        return CgroupMeter(files, fallback) if files is not None else fallback

    async def _remove(self, container: Any) -> None:
        import docker.errors

        def remove() -> None:
            try:
                container.remove(force=True)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                if "already in progress" not in str(exc):
                    log.warning("cannot remove container %s: %s", container.short_id, exc)

        with anyio.CancelScope(shield=True):
            await self._thread(remove)

    async def _dispose(self, handle: Handle) -> None:
        self._cgroups.pop(str(handle.ident), None)
        with anyio.CancelScope(shield=True):
            await handle.channel.aclose()
            await self._remove(handle.backend_data)

    async def _died_of(self, handle: Handle, error: RunnerGone) -> tuple[FailureKind, str]:
        import docker.errors

        container = handle.backend_data

        def inspect() -> dict[str, Any]:
            try:
                container.reload()
                return dict(container.attrs.get("State") or {})
            except docker.errors.NotFound:
                return {"Status": "removed"}

        state = await self._thread(inspect)
        tail = handle.channel.stderr_tail
        if state.get("OOMKilled"):
            return "oom", "the container was OOM-killed: the memory limit was hit"
        status = state.get("Status", "?")
        detail = f"the runner's container is {status}"
        if "ExitCode" in state and status != "running":
            detail += f" (exit code {state['ExitCode']})"
        if tail:
            detail += f"; it said: {tail[-500:]}"
        return "sandbox", f"{detail} [{error}]"

    async def _apply_cpus(self, handle: Handle, cpus: float) -> None:
        import docker.errors

        container = handle.backend_data
        quota = cpu_quota(cpus, self.cpu_period)

        def update() -> None:
            try:
                container.update(cpu_period=self.cpu_period, cpu_quota=quota)
            except docker.errors.NotFound:
                pass  # replaced meanwhile: the new container was created with the new quota

        await self._thread(update)

    # -- for the monitor's fallback and for tests ------------------------------------------

    def container_of(self, agent_id: str) -> Any | None:
        """The docker SDK Container of an agent's current runner (None while replacing)."""
        slot = self._slots.get(agent_id)
        return slot.handle.backend_data if slot and slot.handle else None

    def api_stats(self, container_id: str) -> dict[str, Any] | None:
        """One stats reading from the daemon's API (blocking): for when no cgroup is visible."""
        import docker.errors

        assert self.client is not None
        try:
            return self.client.api.stats(container_id, stream=False, one_shot=True)
        except docker.errors.DockerException:  # gone, or a daemon too old for one_shot
            return None
