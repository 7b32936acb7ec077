"""Agents' containers spread over several Docker daemons (world file: `sandbox.hosts`).

`MultiHostSandbox` implements the engine's Sandbox protocol over one `HostSandbox` (the Docker
backend with lost-daemon detection) per endpoint:

- placement: each agent's container goes to the up host where the most copies of its limits
  still fit, i.e. max over hosts of min(free CPUs / its cpus, free memory / its memory), where
  free = the daemon's NCPU and MemTotal minus what this world's containers there reserve;
  ties go to the host listed first;
- every reading and status names the container's host (SandboxStats.host = the endpoint);
- a lost host (a call fails with a connection error and a ping confirms it, or the monitor's
  health ping fails) is marked down: calls in flight there end with failure="sandbox" and a
  sentence saying so, each of its agents gets an incident and its sandbox is started on the
  remaining hosts with the same limits (eagerly by the monitor task, else on its next call);
- down hosts are rechecked every `recheck_seconds` (by the monitor, and before a placement),
  their leftovers of this world removed, and they take new placements again.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Self

import anyio
import anyio.to_thread

from containers.base import Handle, SandboxError, StatTarget
from containers.docker_backend import DockerSandbox
from containers.endpoints import (
    HostFacts,
    HostProblem,
    SSHTunnel,
    connect_host,
    connection_detail,
    is_connection_error,
    ping_host,
    short_error,
)
from containers.images import AGENT_IMAGE
from engine.sandbox import (
    Reporter,
    RunResult,
    SandboxIncident,
    SandboxLimits,
    SandboxStats,
)

log = logging.getLogger(__name__)

MIN_CPUS = 0.01  # an agent that sold all its rate still takes the smallest quota


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


def headroom(
    ncpu: float, mem_total: int, reserved_cpus: float, reserved_memory: int, limits: SandboxLimits
) -> float:
    """How many more containers of `limits` fit in what is left of a host (may be negative)."""
    cpus = max(limits.cpus, MIN_CPUS)
    memory = max(limits.memory_bytes, 1)
    return min((ncpu - reserved_cpus) / cpus, (mem_total - reserved_memory) / memory)


@dataclass(eq=False)
class Host:
    """One Docker endpoint and what the multi-host sandbox knows of it."""

    endpoint: str
    order: int
    up: bool = False
    sandbox: HostSandbox | None = None
    facts: HostFacts | None = None
    error: str = "not checked yet"  # why it is down
    next_check: float = 0.0
    checking: bool = False
    losses: int = 0
    agents: set[str] = field(default_factory=set)
    tunnel: SSHTunnel | None = None

    @property
    def usable(self) -> bool:
        return self.up and self.sandbox is not None and self.facts is not None

    def url(self) -> str:
        return self.tunnel.url if self.tunnel is not None else self.endpoint


class MultiHostSandbox:
    """The Sandbox protocol over several Docker daemons: see the module's docstring."""

    name = "docker"

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
        self.probe_timeout = probe_timeout
        self.max_parallel = max_parallel
        self.move_parallel = move_parallel
        self.hosts = [
            Host(e, i, tunnel=SSHTunnel(e) if e.startswith("ssh://") else None)
            for i, e in enumerate(hosts)
        ]
        self._limits: dict[str, SandboxLimits] = {}  # every started agent, placed or not
        self._placement: dict[str, Host] = {}
        self._locks: dict[str, anyio.Lock] = {}
        self._displaced: dict[str, tuple[str, str]] = {}  # agent -> (lost endpoint, why)
        self._told_waiting: set[str] = set()
        self._ident_host: dict[str, Host] = {}
        self._tg: anyio.abc.TaskGroup | None = None
        self._moving = False
        self._opened = False
        self._closed = False
        self.moves = 0  # sandboxes started again on another host after a loss

    # -- opening and closing --------------------------------------------------------------

    async def open(self) -> None:
        """Connect to every endpoint; raise SandboxError when none can be used."""
        if self._opened:
            return
        async with anyio.create_task_group() as tg:
            for host in self.hosts:
                tg.start_soon(self._connect, host)
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
        self._placement.clear()

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
        async with self._lock(agent_id):
            self._limits[agent_id] = limits
            host = self._placement.get(agent_id)
            if host is not None and host.usable:
                sandbox = host.sandbox
                assert sandbox is not None
                try:
                    await sandbox.start(agent_id, limits)
                    return
                except HostUnreachable as exc:
                    if not await self._check(host, sandbox, exc.detail):
                        self._limits.pop(agent_id, None)
                        self._unassign(agent_id)
                        raise
            placed, why = await self._place(agent_id)
            if placed is None:
                self._limits.pop(agent_id, None)
                self._displaced.pop(agent_id, None)
                raise SandboxError(f"no Docker host can start a sandbox for {agent_id}: {why}")
        await self._move_displaced()

    async def stop(self, agent_id: str) -> None:
        async with self._lock(agent_id):
            known = self._limits.pop(agent_id, None)
            self._displaced.pop(agent_id, None)
            self._told_waiting.discard(agent_id)
            host = self._unassign(agent_id)
            if host is not None and host.sandbox is not None:
                await host.sandbox.stop(agent_id)  # reports the "stopped" reading
            elif known is not None:
                self._report(self._status(agent_id, known, "stopped", host))
        self._locks.pop(agent_id, None)

    async def run(
        self, agent_id: str, code: str, args: dict[str, Any], timeout: float
    ) -> RunResult:
        if agent_id not in self._limits:
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
        if await self._check(host, sandbox, reason or "a call failed"):
            moved, _ = await self._ensure_placed(agent_id)
            await self._move_displaced()
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
        if agent_id not in self._limits:
            raise KeyError(f"no sandbox is running for agent {agent_id}")
        cpus = float(cpus)
        if not cpus >= 0:  # also refuses NaN
            raise ValueError(f"cpus must be zero or more, not {cpus!r}")
        # Recorded first: a sandbox started elsewhere after a loss gets the new quota.
        self._limits[agent_id] = dataclasses.replace(self._limits[agent_id], cpus=cpus)
        host = self._placement.get(agent_id)
        if host is None or host.sandbox is None:
            return
        sandbox = host.sandbox
        try:
            await sandbox.set_cpus(agent_id, cpus)
        except KeyError:
            pass  # its sandbox is being started: it starts with the recorded limits
        except HostUnreachable as exc:
            await self._check(host, sandbox, exc.detail)
        except Exception as exc:  # noqa: BLE001 - the world runs this as a task: never crash it
            log.warning("cannot change the CPU quota of %s on %s: %r", agent_id, host.endpoint, exc)

    # -- for the world's task group, the monitor and the UI -------------------------------

    async def monitor(self, interval: float = 1.0) -> None:
        """Publish every agent's SandboxStats every `interval` seconds and watch the hosts
        (health pings, rechecks of down hosts, moves after a loss), until cancelled."""
        from containers.stats import StatsMonitor

        async with anyio.create_task_group() as tg:
            self._tg = tg
            try:
                tg.start_soon(StatsMonitor(self, self.reporter, interval).run)
                tg.start_soon(self._watch)
                await anyio.sleep_forever()
            finally:
                self._tg = None

    async def recheck(self) -> list[str]:
        """Check every down host now; return the endpoints that are up again."""
        back: list[str] = []

        async def one(host: Host) -> None:
            with anyio.move_on_after(self.probe_timeout * 3 + 5):
                while host.checking:  # the monitor is checking it already: wait for that
                    await anyio.sleep(0.05)
            if host.usable or await self._connect(host):
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
            problem = await self._ping(host)
            if problem is not None and await self._check(host, sandbox, ""):
                lost.append(host.endpoint)

        async with anyio.create_task_group() as tg:
            for host in self.hosts:
                tg.start_soon(one, host)
        return lost

    def host_of(self, agent_id: str) -> str | None:
        host = self._placement.get(agent_id)
        return host.endpoint if host is not None else None

    def placement(self) -> dict[str, str]:
        return {agent: host.endpoint for agent, host in self._placement.items()}

    def hosts_status(self) -> list[dict[str, Any]]:
        """Each host: up or down (and why), capacity, what this world reserves there."""
        rows = []
        for h in self.hosts:
            cpus, memory = self._reserved(h)
            rows.append(
                {
                    "endpoint": h.endpoint,
                    "up": h.usable,
                    "error": "" if h.usable else h.error,
                    "ncpu": h.facts.ncpu if h.facts else 0,
                    "mem_total": h.facts.mem_total if h.facts else 0,
                    "reserved_cpus": round(cpus, 6),
                    "reserved_memory": memory,
                    "agents": len(h.agents),
                    "losses": h.losses,
                }
            )
        return rows

    def agents(self) -> list[str]:
        return list(self._limits)

    def limits(self, agent_id: str) -> SandboxLimits:
        return self._limits[agent_id]

    def facts(self, agent_id: str) -> dict[str, Any]:
        host = self._placement.get(agent_id)
        return host.sandbox.facts(agent_id) if host and host.sandbox else {}

    def container_of(self, agent_id: str) -> Any | None:
        host = self._placement.get(agent_id)
        return host.sandbox.container_of(agent_id) if host and host.sandbox else None

    def stat_targets(self) -> list[StatTarget]:
        targets: list[StatTarget] = []
        idents: dict[str, Host] = {}
        for host in self.hosts:
            sandbox = host.sandbox
            if sandbox is None or not host.up:
                continue
            for target in sandbox.stat_targets():
                if self._placement.get(target.agent_id) is not host:
                    continue  # left this host (or is leaving it)
                targets.append(target)
                if target.ident is not None:
                    idents[str(target.ident)] = host
        for agent_id, (endpoint, _) in list(self._displaced.items()):
            limits = self._limits.get(agent_id)
            if limits is not None and agent_id not in self._placement:
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

    # -- placement ------------------------------------------------------------------------

    def _reserved(self, host: Host) -> tuple[float, int]:
        cpus = memory = 0
        for agent_id in host.agents:
            limits = self._limits.get(agent_id)
            if limits is not None:
                cpus += max(limits.cpus, MIN_CPUS)
                memory += limits.memory_bytes
        return cpus, memory

    def rank(self, limits: SandboxLimits, exclude: Sequence[Host] = ()) -> list[Host]:
        """Up hosts, the one with the most room for `limits` first (ties: listed first)."""
        scored = []
        for host in self.hosts:
            if not host.usable or host in exclude:
                continue
            assert host.facts is not None
            cpus, memory = self._reserved(host)
            room = headroom(host.facts.ncpu, host.facts.mem_total, cpus, memory, limits)
            scored.append((-room if math.isfinite(room) else 0.0, host.order, host))
        scored.sort(key=lambda item: (item[0], item[1]))
        return [host for _, _, host in scored]

    def _assign(self, agent_id: str, host: Host) -> None:
        self._unassign(agent_id)
        self._placement[agent_id] = host
        host.agents.add(agent_id)

    def _unassign(self, agent_id: str) -> Host | None:
        host = self._placement.pop(agent_id, None)
        if host is not None:
            host.agents.discard(agent_id)
        return host

    def _lock(self, agent_id: str) -> anyio.Lock:
        lock = self._locks.get(agent_id)
        if lock is None:
            lock = self._locks[agent_id] = anyio.Lock()
        return lock

    async def _ensure_placed(self, agent_id: str) -> tuple[Host | None, str]:
        host = self._placement.get(agent_id)
        if host is not None and host.usable:
            return host, ""
        async with self._lock(agent_id):
            host = self._placement.get(agent_id)
            if host is not None and host.usable:
                return host, ""
            if agent_id not in self._limits:
                return None, "it was stopped"
            return await self._place(agent_id)

    async def _place(self, agent_id: str) -> tuple[Host | None, str]:
        """Start the agent's sandbox on the best up host (its lock held)."""
        await self._recheck_due()
        self._unassign(agent_id)
        tried: list[Host] = []
        problems: list[str] = []
        while agent_id in self._limits:
            limits = self._limits[agent_id]
            ranked = self.rank(limits, exclude=tried)
            if not ranked:
                break
            host = ranked[0]
            sandbox = host.sandbox
            assert sandbox is not None
            tried.append(host)
            self._assign(agent_id, host)  # reserved at once: concurrent placements see it
            try:
                await sandbox.start(agent_id, limits)
            except HostUnreachable as exc:
                self._unassign(agent_id)
                problems.append(f"{host.endpoint}: {exc.detail}")
                await self._check(host, sandbox, exc.detail)
                continue
            except SandboxError as exc:
                self._unassign(agent_id)
                problems.append(f"{host.endpoint}: {exc}")
                continue
            except BaseException:
                self._unassign(agent_id)
                raise
            self._placed(agent_id, host)
            return host, ""
        down = [f"{h.endpoint}: {h.error}" for h in self.hosts if not h.usable and h not in tried]
        why = "; ".join(problems + down) or "no Docker host is up"
        lost = self._displaced.get(agent_id)
        if lost is not None and agent_id not in self._told_waiting:
            self._told_waiting.add(agent_id)
            self._report(
                SandboxIncident(
                    agent_id,
                    "sandbox",
                    f"its Docker host {lost[0]} was lost ({lost[1]}) and no other host can take "
                    f"its sandbox now ({why}); it is started when one can",
                )
            )
        return None, why

    def _placed(self, agent_id: str, host: Host) -> None:
        lost = self._displaced.pop(agent_id, None)
        self._told_waiting.discard(agent_id)
        if lost is None:
            return
        self.moves += 1
        log.info("sandbox of %s moved from %s to %s", agent_id, lost[0], host.endpoint)
        self._report(
            SandboxIncident(
                agent_id,
                "sandbox",
                f"its Docker host {lost[0]} was lost ({lost[1]}); its sandbox was started "
                f"again on {host.endpoint} with the same limits",
            )
        )

    async def _restart_on(self, agent_id: str, host: Host) -> bool:
        """A fresh runner for an agent whose sandbox broke on a host that still answers."""
        async with self._lock(agent_id):
            limits = self._limits.get(agent_id)
            sandbox = host.sandbox
            if limits is None or sandbox is None or self._placement.get(agent_id) is not host:
                return False
            try:
                await sandbox.stop(agent_id)
                await sandbox.start(agent_id, limits)
                return True
            except HostUnreachable as exc:
                await self._check(host, sandbox, exc.detail)
            except SandboxError as exc:
                log.warning(
                    "cannot restart the sandbox of %s on %s: %s", agent_id, host.endpoint, exc
                )
            self._unassign(agent_id)  # placed again (maybe elsewhere) on its next call
            return False

    async def _move_displaced(self) -> None:
        """Start the sandboxes of agents whose host was lost on the remaining hosts: in the
        monitor's task group when it runs (nobody waits), else here and now."""
        if not self._displaced or self._moving or self._closed:
            return
        if self._tg is not None:
            self._moving = True
            self._tg.start_soon(self._move_all)
        else:
            self._moving = True
            await self._move_all()

    async def _move_all(self) -> None:
        try:
            limiter = anyio.CapacityLimiter(self.move_parallel)

            async def move(agent_id: str) -> None:
                async with limiter:
                    try:
                        await self._ensure_placed(agent_id)
                    except Exception:
                        log.exception("cannot move the sandbox of %s", agent_id)

            async with anyio.create_task_group() as tg:
                for agent_id in list(self._displaced):
                    if agent_id not in self._placement:
                        tg.start_soon(move, agent_id)
        finally:
            self._moving = False

    # -- hosts coming and going -----------------------------------------------------------

    async def _ping(self, host: Host) -> str | None:
        api_version = host.facts.api_version if host.facts else None
        problem: str | None = f"no answer to a ping within {self.probe_timeout:g} s"
        with anyio.move_on_after(self.probe_timeout + 1):
            problem = await anyio.to_thread.run_sync(
                ping_host, host.url(), api_version, self.probe_timeout, abandon_on_cancel=True
            )
        return problem

    async def _check(self, host: Host, sandbox: HostSandbox, why: str) -> bool:
        """After a failure on `host`: True if it is lost (now or already), else False."""
        if host.sandbox is not sandbox or not host.up:
            return True  # already handled: this sandbox belongs to a host that was lost
        problem = await self._ping(host)
        if problem is None:
            sandbox.unreachable = None
            return False
        if host.sandbox is sandbox and host.up:
            lost = f"{why}; then " if why else ""
            await self._lose(host, sandbox, f"{lost}no answer to a ping: {problem}")
        return True

    async def _lose(self, host: Host, sandbox: HostSandbox, why: str) -> None:
        """Mark a host down and displace its agents (they are placed again elsewhere)."""
        host.up = False
        host.sandbox = None
        host.error = why
        host.losses += 1
        host.next_check = anyio.current_time() + self.recheck_seconds
        displaced = list(host.agents)
        for agent_id in displaced:
            self._unassign(agent_id)
            if agent_id in self._limits:
                self._displaced[agent_id] = (host.endpoint, why)
        log.warning(
            "Docker host %s lost (%s): %d sandbox(es) to move", host.endpoint, why, len(displaced)
        )
        for agent_id in displaced:
            limits = self._limits.get(agent_id)
            if limits is not None:
                self._report(self._status(agent_id, limits, "replacing", host))
        await sandbox.abandon()  # calls in flight there end now

    async def _connect(self, host: Host) -> bool:
        """(Re)connect to a host that is not up; True if it is up now."""
        if host.usable:
            return True
        if host.checking or self._closed:
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
                self.world_id, self._reporter_for(host), endpoint=host.endpoint,
                image=self.image, client=client, max_parallel=self.max_parallel,
            )  # fmt: skip
            try:
                await sandbox.open()  # removes what this world left there (before a loss)
            except Exception as exc:  # noqa: BLE001
                await sandbox.abandon()
                host.error = f"cannot clean up: {short_error(exc)}"
                host.next_check = anyio.current_time() + self.recheck_seconds
                return False
            if self._closed:
                await sandbox.close()
                return False
            host.sandbox, host.facts, host.error, host.up = sandbox, facts, "", True
            if host.losses:
                log.warning("Docker host %s is back for new placements", host.endpoint)
            return True
        finally:
            host.checking = False

    async def _recheck_due(self, *, wait: bool = False) -> None:
        """Reconnect down hosts whose recheck is due. Before a placement (wait=False) with the
        monitor running, in its task group: a placement never waits for a host that hangs."""
        now = anyio.current_time()
        due = [h for h in self.hosts if not h.usable and not h.checking and h.next_check <= now]
        if not due:
            return
        if self._tg is not None and not wait:
            for host in due:
                self._tg.start_soon(self._connect, host)
            return
        async with anyio.create_task_group() as tg:
            for host in due:
                tg.start_soon(self._connect, host)

    async def _watch(self) -> None:
        while True:
            await anyio.sleep(min(self.health_seconds, self.recheck_seconds))
            try:
                await self.check_health()
                await self._recheck_due(wait=True)
                await self._move_displaced()
            except Exception:
                log.exception("watching the Docker hosts failed")

    # -- reporting ------------------------------------------------------------------------

    def _reporter_for(self, host: Host) -> Reporter:
        def report(item: SandboxStats | SandboxIncident) -> None:
            if isinstance(item, SandboxStats):
                placed = self._placement.get(item.agent_id)
                if placed is not None and placed is not host:
                    return  # a late reading from the host the agent left
            self._report(item)

        return report

    def _status(
        self, agent_id: str, limits: SandboxLimits, status: str, host: Host | None
    ) -> SandboxStats:
        return SandboxStats(
            agent_id=agent_id,
            backend=self.name,
            status=status,
            memory_limit_bytes=limits.memory_bytes,
            cpus=limits.cpus,
            host=host.endpoint if host is not None else "none",
        )

    def _report(self, item: SandboxStats | SandboxIncident) -> None:
        if self.reporter is None:
            return
        try:
            self.reporter(item)
        except Exception:  # a broken reporter must not break the sandbox
            log.exception("sandbox reporter failed")
