"""Agents displaced by a lost Docker host: their sandboxes started again, with the same
limits, on the hosts that remain, and each agent told (as an incident) where its sandbox went,
or that it waits for a host that can take it.

The moves run in the monitor's task group when it runs (nobody waits for them), else at once;
each is a placement as any other (`place`), at most `parallel` at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import anyio
import anyio.abc

from containers.placement import Host, Placement, status_reading
from engine.sandbox import SandboxIncident, SandboxStats

log = logging.getLogger(__name__)


class Migration:
    """Who was displaced (and from where, and why), and moving them; see the module's docstring."""

    def __init__(
        self,
        book: Placement,
        *,
        place: Callable[[str], Awaitable[object]],
        report: Callable[[SandboxStats | SandboxIncident], None],
        closed: Callable[[], bool],
        parallel: int,
    ) -> None:
        self.book = book
        self.place = place  # places one agent's sandbox (taking its lock)
        self.report = report
        self.closed = closed
        self.parallel = parallel
        self.displaced: dict[str, tuple[str, str]] = {}  # agent -> (lost endpoint, why)
        self._told_waiting: set[str] = set()
        self._moving = False
        self.moves = 0  # sandboxes started again on another host after a loss
        # The monitor's task group while it runs: moves go there.
        self.task_group: anyio.abc.TaskGroup | None = None

    def displace(self, host: Host, why: str) -> None:
        """`host` was lost: its agents leave it and wait to be placed again elsewhere."""
        book = self.book
        displaced = list(host.agents)
        for agent_id in displaced:
            book.unassign(agent_id)
            if agent_id in book.limits:
                self.displaced[agent_id] = (host.endpoint, why)
        log.warning(
            "Docker host %s lost (%s): %d sandbox(es) to move", host.endpoint, why, len(displaced)
        )
        for agent_id in displaced:
            limits = book.limits.get(agent_id)
            if limits is not None:
                self.report(status_reading(agent_id, limits, "replacing", host))

    def forget(self, agent_id: str) -> None:
        """The agent's sandbox was stopped: it is moved nowhere."""
        self.displaced.pop(agent_id, None)
        self._told_waiting.discard(agent_id)

    def placed(self, agent_id: str, host: Host) -> None:
        """The agent's sandbox started on `host`; if it was displaced, it moved: say so."""
        lost = self.displaced.pop(agent_id, None)
        self._told_waiting.discard(agent_id)
        if lost is None:
            return
        self.moves += 1
        log.info("sandbox of %s moved from %s to %s", agent_id, lost[0], host.endpoint)
        self.report(
            SandboxIncident(
                agent_id,
                "sandbox",
                f"its Docker host {lost[0]} was lost ({lost[1]}); its sandbox was started "
                f"again on {host.endpoint} with the same limits",
            )
        )

    def waiting(self, agent_id: str, why: str) -> None:
        """No host could take the agent's sandbox now; a displaced agent is told so, once."""
        lost = self.displaced.get(agent_id)
        if lost is not None and agent_id not in self._told_waiting:
            self._told_waiting.add(agent_id)
            self.report(
                SandboxIncident(
                    agent_id,
                    "sandbox",
                    f"its Docker host {lost[0]} was lost ({lost[1]}) and no other host can take "
                    f"its sandbox now ({why}); it is started when one can",
                )
            )

    async def move_displaced(self) -> None:
        """Start the sandboxes of agents whose host was lost on the remaining hosts: in the
        monitor's task group when it runs (nobody waits), else here and now."""
        if not self.displaced or self._moving or self.closed():
            return
        if self.task_group is not None:
            self._moving = True
            self.task_group.start_soon(self._move_all)
        else:
            self._moving = True
            await self._move_all()

    async def _move_all(self) -> None:
        try:
            limiter = anyio.CapacityLimiter(self.parallel)

            async def move(agent_id: str) -> None:
                async with limiter:
                    try:
                        await self.place(agent_id)
                    except Exception:
                        log.exception("cannot move the sandbox of %s", agent_id)

            async with anyio.create_task_group() as tg:
                for agent_id in list(self.displaced):
                    if agent_id not in self.book.where:
                        tg.start_soon(move, agent_id)
        finally:
            self._moving = False
