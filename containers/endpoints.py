"""Docker Engine endpoints (unix://, tcp://, ssh://): connecting, probing, and telling a lost
daemon from any other failure. Everything here blocks: call it from a worker thread.

ssh:// endpoints go through a local unix socket forwarded by the `ssh` binary
(`ssh -L local.sock:/var/run/docker.sock`), so the sandbox's hijacked attach stream is a plain
unix socket as with a local daemon. `ssh://user@host:port/path/to/docker.sock` names another
remote socket. Keys and options come from ~/.ssh/config (or the file $ECOLOGY_SSH_CONFIG
names); BatchMode: no password prompts.
tcp:// is plain (no TLS): put such daemons on a private network or use ssh://.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

REMOTE_DOCKER_SOCK = "/var/run/docker.sock"
SSH_CONFIG_ENV = "ECOLOGY_SSH_CONFIG"  # an ssh config file to use instead of ~/.ssh/config
CALL_TIMEOUT = 60.0  # seconds a docker API call may take once a host is connected


class HostProblem(Exception):
    """A Docker host cannot be used (does not answer, or lacks the agent image)."""


def short_error(exc: BaseException, limit: int = 200) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception, what it was raised from, and exceptions carried in its args (requests
    and urllib3 wrap the socket error there), outermost first."""
    found: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop(0)
        if any(current is seen for seen in found) or len(found) > 20:
            continue
        found.append(current)
        todo.extend(a for a in current.args if isinstance(a, BaseException))
        nested = getattr(current, "reason", None)  # urllib3's MaxRetryError
        if isinstance(nested, BaseException):
            todo.append(nested)
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                todo.append(linked)
    return found


def connection_detail(exc: BaseException) -> str:
    """A short reason for a failed connection: the socket's own words when there are some
    ("Connection refused"), else the exception's text."""
    for cause in reversed(_causes(exc)):
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
        if isinstance(cause, socket.timeout):
            return "timed out"
    return short_error(exc)


def is_connection_error(exc: BaseException) -> bool:
    """Whether an exception (or one it was raised from) says the daemon could not be reached:
    refused, reset, timed out, socket gone. An error the daemon *answered* with is not one."""
    import requests.exceptions
    import urllib3.exceptions

    for current in _causes(exc):
        if isinstance(
            current,
            (
                requests.exceptions.ConnectionError,
                requests.exceptions.Timeout,
                urllib3.exceptions.ProtocolError,
                urllib3.exceptions.NewConnectionError,
                urllib3.exceptions.MaxRetryError,
                urllib3.exceptions.TimeoutError,
                ConnectionError,  # refused, reset, aborted, broken pipe
                FileNotFoundError,  # a unix socket that is not there
                socket.timeout,
            ),
        ):
            return True
        if "Error while fetching server API version" in str(current):
            return True
    return False


@dataclass(frozen=True, slots=True)
class HostFacts:
    """What a daemon says about itself: the capacity placement divides."""

    ncpu: float
    mem_total: int
    version: str
    api_version: str
    name: str


class SSHTunnel:
    """A local unix socket forwarded to a remote Docker socket by an `ssh` child process."""

    def __init__(self, endpoint: str) -> None:
        parts = urlsplit(endpoint)
        if parts.scheme != "ssh" or not parts.hostname:
            raise ValueError(f"{endpoint!r} is not an ssh:// endpoint")
        self.endpoint = endpoint
        self.target = f"{parts.username}@{parts.hostname}" if parts.username else parts.hostname
        self.port = parts.port
        self.remote = parts.path if parts.path not in ("", "/") else REMOTE_DOCKER_SOCK
        digest = hashlib.sha256(endpoint.encode()).hexdigest()[:12]
        self.local = os.path.join(tempfile.gettempdir(), f"ecology-ssh-{os.getpid()}-{digest}.sock")
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.local}"

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None and os.path.exists(self.local)

    def ensure(self, timeout: float) -> str:
        """Start the forwarding unless it runs; return the local socket's URL."""
        if self.alive():
            return self.url
        self.close()
        if shutil.which("ssh") is None:
            raise HostProblem("ssh is not installed: ssh:// endpoints need the ssh client")
        command = [
            "ssh", "-nNT",
            "-o", "BatchMode=yes",
            "-o", "ExitOnForwardFailure=yes",
            "-o", "StreamLocalBindUnlink=yes",
            "-o", f"ConnectTimeout={max(1, round(timeout))}",
            "-o", "ServerAliveInterval=5",
            "-o", "ServerAliveCountMax=2",
            "-L", f"{self.local}:{self.remote}",
        ]  # fmt: skip
        if os.environ.get(SSH_CONFIG_ENV):
            command += ["-F", os.environ[SSH_CONFIG_ENV]]
        if self.port:
            command += ["-p", str(self.port)]
        command.append(self.target)
        self._proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if os.path.exists(self.local):
                return self.url
            if self._proc.poll() is not None:
                break
            time.sleep(0.05)
        err = b""
        if self._proc.poll() is not None and self._proc.stderr is not None:
            err = self._proc.stderr.read()[-300:]
        self.close()
        said = err.decode("utf-8", "replace").strip()
        raise HostProblem(
            f"ssh forwarding to {self.target}:{self.remote} failed"
            + (f": {said}" if said else f" (no socket within {timeout:g} s)")
        )

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(2)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc is not None and proc.stderr is not None:
            proc.stderr.close()
        try:
            os.unlink(self.local)
        except FileNotFoundError:
            pass


def client_url(endpoint: str, tunnel: SSHTunnel | None, timeout: float) -> str:
    if endpoint.startswith("ssh://"):
        assert tunnel is not None
        return tunnel.ensure(timeout)
    if endpoint.startswith(("unix://", "tcp://")):
        return endpoint
    raise HostProblem(f"{endpoint!r} is not a Docker endpoint: use unix://, tcp:// or ssh://")


def connect_host(
    endpoint: str,
    image: str,
    *,
    tunnel: SSHTunnel | None = None,
    timeout: float = 3.0,
    max_pool_size: int = 32,
) -> tuple[Any, HostFacts]:
    """Connect to a daemon, read its capacity and check the agent image is there.

    Returns a client whose calls may take CALL_TIMEOUT seconds; raises HostProblem."""
    import docker

    from containers.images import image_state

    url = client_url(endpoint, tunnel, timeout)
    try:
        client = docker.DockerClient(base_url=url, timeout=timeout, max_pool_size=max_pool_size)
    except Exception as exc:
        raise HostProblem(f"no answer: {connection_detail(exc)}") from exc
    try:
        info = client.info()
        version = client.version()
        state = image_state(client, image)
    except Exception as exc:
        client.close()
        raise HostProblem(f"no answer: {connection_detail(exc)}") from exc
    if state == "missing":
        client.close()
        raise HostProblem(f"Docker {version.get('Version', '?')} answers but has no image {image}")
    if state == "stale":
        log.warning("%s on %s was built from an older Dockerfile", image, endpoint)
    client.api.timeout = CALL_TIMEOUT
    facts = HostFacts(
        ncpu=float(info.get("NCPU") or 0),
        mem_total=int(info.get("MemTotal") or 0),
        version=str(version.get("Version", "?")),
        api_version=str(client.api.api_version),
        name=str(info.get("Name", "")),
    )
    return client, facts


def ping_host(url: str, api_version: str | None, timeout: float) -> str | None:
    """None when the daemon answers a ping within `timeout`, else why not. A fresh, short-lived
    client: the host's own client waits CALL_TIMEOUT seconds."""
    import docker

    try:
        api = docker.APIClient(base_url=url, version=api_version or "auto", timeout=timeout)
    except Exception as exc:  # noqa: BLE001
        return connection_detail(exc)
    try:
        api.ping()
        return None
    except Exception as exc:  # noqa: BLE001
        return connection_detail(exc)
    finally:
        api.close()
