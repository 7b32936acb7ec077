"""The Docker backend on one endpoint of a multi-host sandbox, telling a lost daemon from a
bad call: a connection failure becomes `HostUnreachable` (and is remembered), and a lost
host's slots can be forgotten without another call to it."""

from __future__ import annotations

from typing import Any

import anyio
import anyio.to_thread

from containers.base import Handle, SandboxError
from containers.docker_backend import DockerSandbox
from containers.endpoints import connection_detail, is_connection_error
from engine.sandbox import Reporter


class HostUnreachable(SandboxError):
    """A docker call failed because the daemon could not be reached."""

    def __init__(self, endpoint: str, detail: str) -> None:
        super().__init__(f"the Docker host {endpoint} does not answer: {detail}")
        self.endpoint = endpoint
        self.detail = detail


class HostSandbox(DockerSandbox):
    """The Docker backend on one endpoint, turning connection failures into HostUnreachable
    (and remembering them) so the multi-host sandbox can tell a lost daemon from a bad call."""

    def __init__(self, world_id: str, reporter: Reporter | None, *, endpoint: str, **kw: Any):
        super().__init__(world_id, reporter, host=endpoint, owns_client=True, **kw)
        self.endpoint = endpoint
        self.unreachable: str | None = None  # the last connection error, until cleared

    async def _thread(self, fn: Any, *args: Any) -> Any:
        try:
            return await super()._thread(fn, *args)
        except HostUnreachable:
            raise
        except Exception as exc:
            if is_connection_error(exc):
                self.unreachable = connection_detail(exc)
                raise HostUnreachable(self.endpoint, self.unreachable) from exc
            raise

    async def _dispose(self, handle: Handle) -> None:
        try:
            await super()._dispose(handle)
        except HostUnreachable:
            pass  # its container goes with the daemon, or is removed when the host comes back

    async def abandon(self) -> list[str]:
        """Forget every slot without a call to the (lost) daemon: close the streams, mark the
        slots stopped so calls in flight end, and close the client. Returns the agents."""
        self._closed = True
        slots = list(self._slots.values())
        self._slots.clear()
        with anyio.CancelScope(shield=True):
            for slot in slots:
                slot.status = "stopped"
                handle, slot.handle = slot.handle, None
                if handle is not None:
                    await handle.channel.aclose()
        client = self.client
        if client is not None:
            with anyio.move_on_after(2, shield=True):
                await anyio.to_thread.run_sync(_close_quietly, client, abandon_on_cancel=True)
        return [slot.agent_id for slot in slots]


def _close_quietly(client: Any) -> None:
    try:
        client.close()
    except Exception:  # noqa: BLE001, S110 - closing a client of a lost daemon
        pass
