"""Which Docker hosts of a multi-host sandbox are up: connecting to them, pinging them, marking
a lost one down, and rechecking down hosts every `recheck_seconds`.

A host is lost when a call fails with a connection error and a ping confirms it, or when the
monitor's health ping fails. Losing it marks it down, hands its agents to whoever moves them
(`on_lost`) and abandons its sandbox, so calls in flight there end at once. A down host whose
recheck is due is connected again (what this world left there is removed) and takes new
placements again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import anyio
import anyio.abc
import anyio.to_thread

from containers.docker_host import HostSandbox
from containers.endpoints import HostFacts, HostProblem, connect_host, ping_host, short_error
from containers.placement import Host
from engine.sandbox import Reporter

log = logging.getLogger(__name__)


class HostHealth:
    """Connects, pings, loses and rechecks the hosts; see the module's docstring."""

    def __init__(
        self,
        hosts: list[Host],
        *,
        world_id: str,
        image: str,
        reporter_for: Callable[[Host], Reporter],
        on_lost: Callable[[Host, str], None],
        closed: Callable[[], bool],
        recheck_seconds: float,
        probe_timeout: float,
        max_parallel: int,
    ) -> None:
        self.hosts = hosts
        self.world_id = world_id
        self.image = image
        self.reporter_for = reporter_for  # what each host's sandbox reports through
        self.on_lost = on_lost  # a lost host's agents are displaced (the host is down already)
        self.closed = closed
        self.recheck_seconds = recheck_seconds
        self.probe_timeout = probe_timeout
        self.max_parallel = max_parallel
        # The monitor's task group while it runs: rechecks before a placement go there.
        self.task_group: anyio.abc.TaskGroup | None = None

    async def ping(self, host: Host) -> str | None:
        api_version = host.facts.api_version if host.facts else None
        problem: str | None = f"no answer to a ping within {self.probe_timeout:g} s"
        with anyio.move_on_after(self.probe_timeout + 1):
            problem = await anyio.to_thread.run_sync(
                ping_host, host.url(), api_version, self.probe_timeout, abandon_on_cancel=True
            )
        return problem

    async def check(self, host: Host, sandbox: HostSandbox, why: str) -> bool:
        """After a failure on `host`: True if it is lost (now or already), else False."""
        if host.sandbox is not sandbox or not host.up:
            return True  # already handled: this sandbox belongs to a host that was lost
        problem = await self.ping(host)
        if problem is None:
            sandbox.unreachable = None
            return False
        if host.sandbox is sandbox and host.up:
            lost = f"{why}; then " if why else ""
            await self.lose(host, sandbox, f"{lost}no answer to a ping: {problem}")
        return True

    async def lose(self, host: Host, sandbox: HostSandbox, why: str) -> None:
        """Mark a host down and displace its agents (they are placed again elsewhere)."""
        host.up = False
        host.sandbox = None
        host.error = why
        host.losses += 1
        host.next_check = anyio.current_time() + self.recheck_seconds
        self.on_lost(host, why)
        await sandbox.abandon()  # calls in flight there end now

    async def connect(self, host: Host) -> bool:
        """(Re)connect to a host that is not up; True if it is up now."""
        if host.usable:
            return True
        if host.checking or self.closed():
            return False
        host.checking = True
        try:
            client: Any = None
            facts: HostFacts | None = None
            try:
                with anyio.fail_after(self.probe_timeout * 3 + 2):
                    client, facts = await anyio.to_thread.run_sync(
                        lambda: connect_host(
                            host.endpoint, self.image, tunnel=host.tunnel,
                            timeout=self.probe_timeout, max_pool_size=4 * self.max_parallel,
                        ),
                        abandon_on_cancel=True,
                    )  # fmt: skip
            except HostProblem as exc:
                host.error = str(exc)
            except TimeoutError:
                host.error = f"no answer within {self.probe_timeout * 3 + 2:g} s"
            except Exception as exc:  # noqa: BLE001 - may run in the world's task group
                host.error = f"cannot connect: {short_error(exc)}"
            if client is None or facts is None:
                host.next_check = anyio.current_time() + self.recheck_seconds
                return False
            sandbox = HostSandbox(
                self.world_id, self.reporter_for(host), endpoint=host.endpoint,
                image=self.image, client=client, max_parallel=self.max_parallel,
            )  # fmt: skip
            try:
                await sandbox.open()  # removes what this world left there (before a loss)
            except Exception as exc:  # noqa: BLE001
                await sandbox.abandon()
                host.error = f"cannot clean up: {short_error(exc)}"
                host.next_check = anyio.current_time() + self.recheck_seconds
                return False
            if self.closed():
                await sandbox.close()
                return False
            host.sandbox, host.facts, host.error, host.up = sandbox, facts, "", True
            if host.losses:
                log.warning("Docker host %s is back for new placements", host.endpoint)
            return True
        finally:
            host.checking = False

    async def recheck_due(self, *, wait: bool = False) -> None:
        """Reconnect down hosts whose recheck is due. Before a placement (wait=False) with the
        monitor running, in its task group: a placement never waits for a host that hangs."""
        now = anyio.current_time()
        due = [h for h in self.hosts if not h.usable and not h.checking and h.next_check <= now]
        if not due:
            return
        if self.task_group is not None and not wait:
            for host in due:
                self.task_group.start_soon(self.connect, host)
            return
        async with anyio.create_task_group() as tg:
            for host in due:
                tg.start_soon(self.connect, host)

    async def recheck(self) -> list[str]:
        """Check every down host now; return the endpoints that are up again."""
        back: list[str] = []

        async def one(host: Host) -> None:
            with anyio.move_on_after(self.probe_timeout * 3 + 5):
                while host.checking:  # the monitor is checking it already: wait for that
                    await anyio.sleep(0.05)
            if host.usable or await self.connect(host):
                back.append(host.endpoint)

        async with anyio.create_task_group() as tg:
            for host in self.hosts:
                if not host.usable:
                    tg.start_soon(one, host)
        return back

    async def check_health(self) -> list[str]:
        """Ping every up host now; mark those that do not answer lost. Returns them."""
        lost: list[str] = []

        async def one(host: Host) -> None:
            sandbox = host.sandbox
            if sandbox is None or not host.up:
                return
            problem = await self.ping(host)
            if problem is not None and await self.check(host, sandbox, ""):
                lost.append(host.endpoint)

        async with anyio.create_task_group() as tg:
            for host in self.hosts:
                tg.start_soon(one, host)
        return lost
