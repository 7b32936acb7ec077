"""Agents' containers spread over several Docker daemons (world file: `sandbox.hosts`).

`MultiHostSandbox` implements the engine's Sandbox protocol over one `HostSandbox` (the Docker
backend with lost-daemon detection, containers/docker_host.py) per endpoint, from parts:

- placement (containers/placement.py): each agent's container goes to the up host with the
  most room for its limits;
- host health (containers/host_health.py): a lost host is marked down, calls in flight there
  end with failure="sandbox" and a sentence saying so; down hosts are rechecked every
  `recheck_seconds` (by the monitor, and before a placement), their leftovers of this world
  removed, and they take new placements again;
- migration (containers/migration.py): each agent of a lost host gets an incident and its
  sandbox is started on the remaining hosts with the same limits (eagerly by the monitor
  task, else on its next call).

Every reading and status names the container's host (SandboxStats.host = the endpoint).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any, Self

import anyio
import anyio.abc
import anyio.to_thread

from containers.base import SandboxError, deliver
from containers.docker_host import HostUnreachable
from containers.endpoints import SSHTunnel, short_error
from containers.host_health import HostHealth
from containers.images import AGENT_IMAGE
from containers.migration import Migration
from containers.placement import BACKEND, Host, Placement, status_reading
from containers.stats import StatsMonitor, StatTarget
from engine.sandbox import (
    Reporter,
    RunResult,
    SandboxIncident,
    SandboxLimits,
    SandboxStats,
)

log = logging.getLogger(__name__)


class MultiHostSandbox:
    """The Sandbox protocol over several Docker daemons: see the module's docstring."""

    name = BACKEND

    def __init__(
        self,
        world_id: str,
        reporter: Reporter | None = None,
        *,
        hosts: Sequence[str],
        image: str = AGENT_IMAGE,
        recheck_seconds: float = 10.0,
        health_seconds: float = 5.0,
        probe_timeout: float = 3.0,
        max_parallel: int = 8,
        move_parallel: int = 8,
    ) -> None:
        if not hosts:
            raise ValueError("a multi-host sandbox needs at least one Docker endpoint")
        if len(set(hosts)) != len(hosts):
            raise ValueError("a Docker endpoint is listed twice")
        self.world_id = world_id
        self.reporter = reporter
        self.image = image
        self.recheck_seconds = recheck_seconds
        self.health_seconds = health_seconds
        self.book = Placement(
            [
                Host(e, i, tunnel=SSHTunnel(e) if e.startswith("ssh://") else None)
                for i, e in enumerate(hosts)
            ]
        )
        self.migration = Migration(
            self.book, place=self._ensure_placed, report=self._report, closed=self._is_closed,
            parallel=move_parallel,
        )  # fmt: skip
        self.health = HostHealth(
            self.book.hosts, world_id=world_id, image=image, reporter_for=self._reporter_for,
            on_lost=self.migration.displace, closed=self._is_closed,
            recheck_seconds=recheck_seconds, probe_timeout=probe_timeout, max_parallel=max_parallel,
        )  # fmt: skip
        self._locks: dict[str, anyio.Lock] = {}
        self._ident_host: dict[str, Host] = {}
        self._opened = False
        self._closed = False

    @property
    def hosts(self) -> list[Host]:
        return self.book.hosts

    @property
    def moves(self) -> int:
        """Sandboxes started again on another host after a loss."""
        return self.migration.moves

    def rank(self, limits: SandboxLimits, exclude: Sequence[Host] = ()) -> list[Host]:
        """Up hosts, the one with the most room for `limits` first (ties: listed first)."""
        return self.book.rank(limits, exclude)

    def _is_closed(self) -> bool:
        return self._closed

    # -- opening and closing --------------------------------------------------------------

    async def open(self) -> None:
        """Connect to every endpoint; raise SandboxError when none can be used."""
        if self._opened:
            return
        async with anyio.create_task_group() as tg:
            for host in self.hosts:
                tg.start_soon(self.health.connect, host)
        self._opened = True
        if not any(h.usable for h in self.hosts):
            problems = "; ".join(f"{h.endpoint}: {h.error}" for h in self.hosts)
            await self.close()
            raise SandboxError(f"no Docker host can be used ({problems})")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with anyio.CancelScope(shield=True):
            async with anyio.create_task_group() as tg:
                for host in self.hosts:
                    if host.sandbox is not None:
                        tg.start_soon(host.sandbox.close)
            for host in self.hosts:
                host.up = False
                host.sandbox = None
                host.agents.clear()
                if host.tunnel is not None:
                    await anyio.to_thread.run_sync(host.tunnel.close)
        self.book.where.clear()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def describe(self) -> str:
        """One sentence for the UI: the hosts, their capacity, which are down."""
        up = [h for h in self.hosts if h.usable]
        down = [h for h in self.hosts if not h.usable]
        parts = []
        for h in up:
            assert h.facts is not None
            parts.append(
                f"{h.endpoint} (Docker {h.facts.version}, {h.facts.ncpu:g} CPUs, "
                f"{h.facts.mem_total / 2**30:.1f} GiB)"
            )
        text = (
            f"docker sandbox on {len(up)} of {len(self.hosts)} Docker hosts, each agent's "
            f"container where the most CPU and memory is free: {', '.join(parts) or 'none'}"
        )
        if down:
            text += "; down (rechecked every {:g} s): {}".format(
                self.recheck_seconds, ", ".join(f"{h.endpoint} ({h.error})" for h in down)
            )
        return text

    # -- the Sandbox protocol -------------------------------------------------------------

    async def start(self, agent_id: str, limits: SandboxLimits) -> None:
        if self._closed:
            raise SandboxError("the docker sandbox is closed")
        await self.open()
        book = self.book
        async with self._lock(agent_id):
            book.limits[agent_id] = limits
            host = book.where.get(agent_id)
            if host is not None and host.usable:
                sandbox = host.sandbox
                assert sandbox is not None
                try:
                    await sandbox.start(agent_id, limits)
                    return
                except HostUnreachable as exc:
                    if not await self.health.check(host, sandbox, exc.detail):
                        book.limits.pop(agent_id, None)
                        book.unassign(agent_id)
                        raise
            placed, why = await self._place(agent_id)
            if placed is None:
                book.limits.pop(agent_id, None)
                self.migration.displaced.pop(agent_id, None)
                raise SandboxError(f"no Docker host can start a sandbox for {agent_id}: {why}")
        await self.migration.move_displaced()

    async def stop(self, agent_id: str) -> None:
        async with self._lock(agent_id):
            known = self.book.limits.pop(agent_id, None)
            self.migration.forget(agent_id)
            host = self.book.unassign(agent_id)
            if host is not None and host.sandbox is not None:
                await host.sandbox.stop(agent_id)  # reports the "stopped" reading
            elif known is not None:
                self._report(status_reading(agent_id, known, "stopped", host))
        self._locks.pop(agent_id, None)

    async def run(
        self, agent_id: str, code: str, args: dict[str, Any], timeout: float
    ) -> RunResult:
        if agent_id not in self.book.limits:
            return RunResult(
                ok=False, failure="sandbox", error=f"no sandbox is running for agent {agent_id}"
            )
        host, why = await self._ensure_placed(agent_id)
        if host is None:
            return RunResult(
                ok=False,
                failure="sandbox",
                error=f"no Docker host is up for the sandbox of agent {agent_id} ({why})",
            )
        sandbox = host.sandbox
        assert sandbox is not None
        error: BaseException | None = None
        result: RunResult | None = None
        try:
            result = await sandbox.run(agent_id, code, args, timeout)
        except Exception as exc:  # noqa: BLE001 - the sandbox itself broke: a lost host, or worse
            error = exc
        if (
            error is None
            and result is not None
            and sandbox.unreachable is None
            and (result.ok or result.failure not in ("sandbox", "timeout"))
        ):
            return result
        reason = (
            error.detail
            if isinstance(error, HostUnreachable)
            else (short_error(error) if error is not None else (result.error if result else ""))
        )
        if await self.health.check(host, sandbox, reason or "a call failed"):
            moved, _ = await self._ensure_placed(agent_id)
            await self.migration.move_displaced()
            lost_why = host.error
            where = (
                f"its sandbox was started again on {moved.endpoint}"
                if moved is not None
                else "no other Docker host is up: its sandbox waits for one"
            )
            return RunResult(
                ok=False,
                failure="sandbox",
                error=f"the Docker host {host.endpoint} was lost during the call ({lost_why}); "
                f"{where}",
                cpu_seconds=result.cpu_seconds if result is not None else 0.0,
                wall_seconds=result.wall_seconds if result is not None else 0.0,
            )
        if error is not None:
            # The host answers but the agent's sandbox broke: give it a fresh runner there.
            log.warning("sandbox of %s on %s broke: %r", agent_id, host.endpoint, error)
            restarted = await self._restart_on(agent_id, host)
            return RunResult(
                ok=False,
                failure="sandbox",
                error=f"the sandbox on {host.endpoint} broke ({type(error).__name__}: "
                f"{short_error(error)})" + ("; it was replaced" if restarted else ""),
                replaced=restarted,
            )
        assert result is not None
        return result

    async def set_cpus(self, agent_id: str, cpus: float) -> None:
        book = self.book
        if agent_id not in book.limits:
            raise KeyError(f"no sandbox is running for agent {agent_id}")
        cpus = float(cpus)
        if not cpus >= 0:  # also refuses NaN
            raise ValueError(f"cpus must be zero or more, not {cpus!r}")
        # Recorded first: a sandbox started elsewhere after a loss gets the new quota.
        book.limits[agent_id] = dataclasses.replace(book.limits[agent_id], cpus=cpus)
        host = book.where.get(agent_id)
        if host is None or host.sandbox is None:
            return
        sandbox = host.sandbox
        try:
            await sandbox.set_cpus(agent_id, cpus)
        except KeyError:
            pass  # its sandbox is being started: it starts with the recorded limits
        except HostUnreachable as exc:
            await self.health.check(host, sandbox, exc.detail)
        except Exception as exc:  # noqa: BLE001 - the world runs this as a task: never crash it
            log.warning("cannot change the CPU quota of %s on %s: %r", agent_id, host.endpoint, exc)

    # -- for the world's task group, the monitor and the UI -------------------------------

    async def monitor(self, interval: float = 1.0) -> None:
        """Publish every agent's SandboxStats every `interval` seconds and watch the hosts
        (health pings, rechecks of down hosts, moves after a loss), until cancelled."""
        async with anyio.create_task_group() as tg:
            self.health.task_group = self.migration.task_group = tg
            try:
                tg.start_soon(StatsMonitor(self, self.reporter, interval).run)
                tg.start_soon(self._watch)
                await anyio.sleep_forever()
            finally:
                self.health.task_group = self.migration.task_group = None

    async def _watch(self) -> None:
        while True:
            await anyio.sleep(min(self.health_seconds, self.recheck_seconds))
            try:
                await self.health.check_health()
                await self.health.recheck_due(wait=True)
                await self.migration.move_displaced()
            except Exception:
                log.exception("watching the Docker hosts failed")

    async def recheck(self) -> list[str]:
        """Check every down host now; return the endpoints that are up again."""
        return await self.health.recheck()

    async def check_health(self) -> list[str]:
        """Ping every up host now; mark those that do not answer lost. Returns them."""
        return await self.health.check_health()

    def host_of(self, agent_id: str) -> str | None:
        host = self.book.where.get(agent_id)
        return host.endpoint if host is not None else None

    def placement(self) -> dict[str, str]:
        return {agent: host.endpoint for agent, host in self.book.where.items()}

    def hosts_status(self) -> list[dict[str, Any]]:
        """Each host: up or down (and why), capacity, what this world reserves there."""
        return self.book.hosts_status()

    def agents(self) -> list[str]:
        return list(self.book.limits)

    def limits(self, agent_id: str) -> SandboxLimits:
        return self.book.limits[agent_id]

    def facts(self, agent_id: str) -> dict[str, Any]:
        host = self.book.where.get(agent_id)
        return host.sandbox.facts(agent_id) if host and host.sandbox else {}

    def container_of(self, agent_id: str) -> Any | None:
        host = self.book.where.get(agent_id)
        return host.sandbox.container_of(agent_id) if host and host.sandbox else None

    def stat_targets(self) -> list[StatTarget]:
        targets: list[StatTarget] = []
        idents: dict[str, Host] = {}
        where = self.book.where
        for host in self.hosts:
            sandbox = host.sandbox
            if sandbox is None or not host.up:
                continue
            for target in sandbox.stat_targets():
                if where.get(target.agent_id) is not host:
                    continue  # left this host (or is leaving it)
                targets.append(target)
                if target.ident is not None:
                    idents[str(target.ident)] = host
        for agent_id, (endpoint, _) in list(self.migration.displaced.items()):
            limits = self.book.limits.get(agent_id)
            if limits is not None and agent_id not in where:
                targets.append(
                    StatTarget(agent_id, self.name, "container", None, "replacing", limits, 0, 0,
                               host=endpoint)
                )  # fmt: skip
        self._ident_host = idents
        return targets

    def api_stats(self, container_id: str) -> dict[str, Any] | None:
        """The daemon's stats of one container (blocking; the monitor's fallback)."""
        host = self._ident_host.get(container_id)
        sandbox = host.sandbox if host is not None and host.up else None
        return sandbox.api_stats(container_id) if sandbox is not None else None

    # -- placing agents -------------------------------------------------------------------

    def _lock(self, agent_id: str) -> anyio.Lock:
        lock = self._locks.get(agent_id)
        if lock is None:
            lock = self._locks[agent_id] = anyio.Lock()
        return lock

    async def _ensure_placed(self, agent_id: str) -> tuple[Host | None, str]:
        host = self.book.usable_host(agent_id)
        if host is not None:
            return host, ""
        async with self._lock(agent_id):
            host = self.book.usable_host(agent_id)
            if host is not None:
                return host, ""
            if agent_id not in self.book.limits:
                return None, "it was stopped"
            return await self._place(agent_id)

    async def _place(self, agent_id: str) -> tuple[Host | None, str]:
        """Start the agent's sandbox on the best up host (its lock held)."""
        book = self.book
        await self.health.recheck_due()
        book.unassign(agent_id)
        tried: list[Host] = []
        problems: list[str] = []
        while agent_id in book.limits:
            limits = book.limits[agent_id]
            ranked = book.rank(limits, exclude=tried)
            if not ranked:
                break
            host = ranked[0]
            sandbox = host.sandbox
            assert sandbox is not None
            tried.append(host)
            book.assign(agent_id, host)  # reserved at once: concurrent placements see it
            try:
                await sandbox.start(agent_id, limits)
            except HostUnreachable as exc:
                book.unassign(agent_id)
                problems.append(f"{host.endpoint}: {exc.detail}")
                await self.health.check(host, sandbox, exc.detail)
                continue
            except SandboxError as exc:
                book.unassign(agent_id)
                problems.append(f"{host.endpoint}: {exc}")
                continue
            except BaseException:
                book.unassign(agent_id)
                raise
            self.migration.placed(agent_id, host)
            return host, ""
        down = [f"{h.endpoint}: {h.error}" for h in self.hosts if not h.usable and h not in tried]
        why = "; ".join(problems + down) or "no Docker host is up"
        self.migration.waiting(agent_id, why)
        return None, why

    async def _restart_on(self, agent_id: str, host: Host) -> bool:
        """A fresh runner for an agent whose sandbox broke on a host that still answers."""
        async with self._lock(agent_id):
            limits = self.book.limits.get(agent_id)
            sandbox = host.sandbox
            if limits is None or sandbox is None or self.book.where.get(agent_id) is not host:
                return False
            try:
                await sandbox.stop(agent_id)
                await sandbox.start(agent_id, limits)
                return True
            except HostUnreachable as exc:
                await self.health.check(host, sandbox, exc.detail)
            except SandboxError as exc:
                log.warning(
                    "cannot restart the sandbox of %s on %s: %s", agent_id, host.endpoint, exc
                )
            self.book.unassign(agent_id)  # placed again (maybe elsewhere) on its next call
            return False

    # -- reporting ------------------------------------------------------------------------

    def _reporter_for(self, host: Host) -> Reporter:
        def report(item: SandboxStats | SandboxIncident) -> None:
            if isinstance(item, SandboxStats):
                placed = self.book.where.get(item.agent_id)
                if placed is not None and placed is not host:
                    return  # a late reading from the host the agent left
            self._report(item)

        return report

    def _report(self, item: SandboxStats | SandboxIncident) -> None:
        deliver(self.reporter, item)
