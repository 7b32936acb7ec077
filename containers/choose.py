"""Which sandbox a world uses, always with one sentence saying which and why (shown in the UI).

`auto`: Docker when a daemon answers and the agent image exists; else bubblewrap when it is
installed and can make a sandbox here; else, as root, subprocesses with a uid per agent; else
none at all: the world runs, and code calls are refused with a reason that says what to
install. The subprocess backend without root holds nothing against hostile code, so it is
used only when asked for with `unsafe=True` (`--sandbox subprocess --unsafe-sandbox`).
A world whose `sandbox.hosts` lists Docker endpoints gets a MultiHostSandbox over them."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

import anyio
import anyio.to_thread

from containers.base import BaseSandbox
from containers.images import AGENT_IMAGE, image_state
from engine.sandbox import Reporter

log = logging.getLogger(__name__)

Preference = Literal["auto", "docker", "bwrap", "subprocess"]
PREFERENCES = ("auto", "docker", "bwrap", "subprocess")
ENV_PREFERENCE = "ECOLOGY_SANDBOX"  # auto | docker | bwrap | subprocess
ENV_UNSAFE = "ECOLOGY_UNSAFE_SANDBOX"  # "1": the subprocess backend may run without root
INSTALL = (
    "install bubblewrap (apt install bubblewrap, dnf install bubblewrap) or Docker, or run "
    "with --sandbox subprocess --unsafe-sandbox to let agents' code run as you"
)
REFUSED = "no sandbox: agents' code is refused"  # how a world without one says so


class SandboxChoice(NamedTuple):
    # A BaseSandbox, a MultiHostSandbox (same protocol), or None: code calls are refused.
    sandbox: BaseSandbox[Any] | Any | None
    reason: str


class DaemonProbe(NamedTuple):
    client: Any | None  # a connected docker client, or None
    where: str  # the daemon's address, for messages
    detail: str  # version when it answered, the error when not


def daemon_address() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def probe_daemon_blocking(timeout: float = 1.0) -> DaemonProbe:
    """Connect and ping the daemon (blocking: run in a thread). Never raises."""
    where = daemon_address()
    try:
        import docker

        client = docker.from_env(timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - any failure means "no daemon here"
        return DaemonProbe(None, where, _short(exc))
    try:
        client.ping()
        version = client.version().get("Version", "?")
    except Exception as exc:  # noqa: BLE001
        client.close()
        return DaemonProbe(None, where, _short(exc))
    client.api.timeout = 60  # probing wanted a short timeout; real work does not
    return DaemonProbe(client, where, version)


async def probe_daemon(timeout: float = 1.0) -> DaemonProbe:
    """Whether a Docker daemon answers within about `timeout` seconds."""
    result: DaemonProbe | None = None
    with anyio.move_on_after(timeout + 0.5):
        result = await anyio.to_thread.run_sync(
            probe_daemon_blocking, timeout, abandon_on_cancel=True
        )
    if result is None:
        return DaemonProbe(None, daemon_address(), f"no answer within {timeout:g} s")
    return result


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


async def choose_sandbox(
    world_id: str,
    reporter: Reporter | None = None,
    *,
    prefer: Preference | None = None,
    unsafe: bool | None = None,
    image: str = AGENT_IMAGE,
    daemon_timeout: float = 1.0,
    hosts: Sequence[str] | None = None,
) -> SandboxChoice:
    """Pick and open a sandbox for a world. `prefer` (or $ECOLOGY_SANDBOX) forces a backend;
    forcing one that cannot be used raises RuntimeError with the reason. `unsafe` (or
    $ECOLOGY_UNSAFE_SANDBOX=1) allows the subprocess backend without root.

    `hosts` (the world's `sandbox.hosts`): Docker endpoints to place agents' containers on;
    when given, the docker sandbox is a MultiHostSandbox over them (DOCKER_HOST is not used)."""
    source = "asked for" if prefer else f"{ENV_PREFERENCE} asks for it"
    prefer = prefer or os.environ.get(ENV_PREFERENCE, "auto")  # type: ignore[assignment]
    if prefer not in PREFERENCES:
        raise ValueError(f"unknown sandbox preference {prefer!r}: {', '.join(PREFERENCES)}")
    if unsafe is None:
        unsafe = os.environ.get(ENV_UNSAFE, "") == "1"

    if prefer == "subprocess":
        if os.geteuid() != 0 and not unsafe:
            raise RuntimeError(
                "the subprocess sandbox does not hold agents' code without root (it could read "
                "your files, see your processes' environments and kill them); add "
                "--unsafe-sandbox to use it anyway, or use --sandbox bwrap"
            )
        return await _subprocesses(reporter, source)
    if prefer == "bwrap":
        choice, why_not = await _bubblewrap(reporter, source)
        if choice is None:
            raise RuntimeError(f"cannot use the bwrap sandbox: {why_not}")
        return choice

    async def local(why: str) -> SandboxChoice:
        return await _without_docker(reporter, why)

    if hosts:
        return await _multi_host(world_id, reporter, list(hosts), prefer, image, local)

    probe = await probe_daemon(daemon_timeout)
    why_not: str | None = None
    if probe.client is None:
        why_not = f"no Docker daemon at {probe.where} ({probe.detail})"
    else:
        state = await anyio.to_thread.run_sync(image_state, probe.client, image)
        if state == "missing":
            why_not = (
                f"Docker {probe.detail} answers at {probe.where} but the image {image} is "
                "missing (build it with `ecology containers build`)"
            )
        elif state == "stale":
            log.warning("%s was built from an older Dockerfile: `ecology containers build`", image)
    if why_not is not None:
        if probe.client is not None:
            await anyio.to_thread.run_sync(probe.client.close)
        if prefer == "docker":
            raise RuntimeError(f"cannot use the docker sandbox: {why_not}")
        return await local(why_not)

    from containers.docker_backend import DockerSandbox

    sandbox = DockerSandbox(world_id, reporter, image=image, client=probe.client, owns_client=True)
    await sandbox.open()
    orphans = (
        f"; removed {sandbox.orphans_removed} orphan container(s)"
        if sandbox.orphans_removed
        else ""
    )
    reason = (
        f"docker sandbox: Docker {probe.detail} answers at {probe.where}, image {image}; "
        f"one container per agent with CPU, memory and pids limits and no network{orphans}"
    )
    return SandboxChoice(sandbox, reason)


async def _subprocesses(reporter: Reporter | None, why: str) -> SandboxChoice:
    from containers.subprocess_backend import SubprocessSandbox

    sandbox = SubprocessSandbox(reporter)
    await sandbox.open()
    unsafe = "" if sandbox.separate_users else " UNSAFE: agents' code runs as you;"
    return SandboxChoice(
        sandbox, f"subprocess sandbox: {why};{unsafe} it enforces {sandbox.enforces}"
    )


async def _bubblewrap(reporter: Reporter | None, why: str) -> tuple[SandboxChoice | None, str]:
    """A bwrap sandbox, opened (its probe ran a real sandbox), or None and why not."""
    from containers.base import SandboxError
    from containers.bwrap_backend import BwrapSandbox, find_bwrap

    path = find_bwrap()
    if path is None:
        return None, "bubblewrap (bwrap) is not installed"
    try:
        sandbox = BwrapSandbox(reporter, bwrap=path)
        await sandbox.open()
    except SandboxError as exc:
        return None, str(exc)
    return SandboxChoice(sandbox, f"bwrap sandbox: {why}; it enforces {sandbox.enforces}"), ""


async def _without_docker(reporter: Reporter | None, why_not_docker: str) -> SandboxChoice:
    """bubblewrap, else (as root) subprocesses with a uid per agent, else no sandbox."""
    choice, why_not_bwrap = await _bubblewrap(reporter, why_not_docker)
    if choice is not None:
        return choice
    if os.geteuid() == 0:
        return await _subprocesses(reporter, f"{why_not_docker}; {why_not_bwrap}; running as root")
    return SandboxChoice(None, f"{REFUSED}: {why_not_docker}; {why_not_bwrap}. To run it, {INSTALL}")


async def _multi_host(
    world_id: str,
    reporter: Reporter | None,
    hosts: list[str],
    prefer: str,
    image: str,
    local: Any,
) -> SandboxChoice:
    from containers.base import SandboxError
    from containers.multihost import MultiHostSandbox

    sandbox = MultiHostSandbox(world_id, reporter, hosts=hosts, image=image)
    try:
        await sandbox.open()
    except SandboxError as exc:
        if prefer == "docker":
            raise RuntimeError(f"cannot use the docker sandbox: {exc}") from None
        return await local(str(exc))
    reason = (
        f"{sandbox.describe()}; one container per agent with CPU, memory and pids limits and "
        "no network"
    )
    return SandboxChoice(sandbox, reason)
