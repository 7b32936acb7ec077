"""What every backend shares: one slot per agent, the call path, incidents and replacement.

A backend supplies how to spawn a runner (container or process), dispose of it, say why it
died, change its CPU quota and measure a call from the host; this module turns every failure
into a RunResult, reports an incident and replaces the runner after an OOM kill, a timeout,
pids exhaustion or a reply that broke the protocol (SPEC §8). What a call is charged is
always the host's measurement, never a figure from inside the sandbox.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

import anyio

from containers.channel import Channel, ProtocolError, Reply, RunnerGone, check_request, to_result
from containers.meter import Meter, QuotaMeter
from containers.stats import StatsMonitor, StatTarget
from engine.sandbox import (
    FailureKind,
    Reporter,
    RunResult,
    SandboxIncident,
    SandboxLimits,
    SandboxStats,
)

log = logging.getLogger(__name__)

# Failures after which the runner is not trusted any more and is replaced by a fresh one.
REPLACE_AFTER: frozenset[str] = frozenset({"oom", "timeout", "pids", "sandbox", "protocol"})

Status = Literal["starting", "running", "replacing", "stopped", "gone"]


class SandboxError(RuntimeError):
    """The sandbox itself is broken (cannot start a runner): not a failure of agent code."""


@dataclass(slots=True)
class Handle:
    """One live runner: its channel plus what the backend needs to find and end it."""

    channel: Channel
    ident: str | int  # container id or process id
    backend_data: Any = None
    facts: dict[str, Any] = field(default_factory=dict)  # the runner's hello


H = TypeVar("H", bound=Handle)


@dataclass(slots=True, eq=False)
class Slot(Generic[H]):
    """An agent's place in the sandbox, kept across replacements of its runner."""

    agent_id: str
    limits: SandboxLimits
    lock: anyio.Lock = field(default_factory=anyio.Lock)
    handle: H | None = None
    status: Status = "starting"
    restarts: int = 0
    oom_kills: int = 0
    # A call was cancelled mid-flight: its runner may still be busy with it, so it is
    # replaced before the next call rather than queueing behind an abandoned one.
    abandoned: bool = False


def deliver(reporter: Reporter | None, item: SandboxStats | SandboxIncident) -> None:
    """Hand a reading or an incident to the world's reporter: a broken reporter must not
    break the sandbox that reports."""
    if reporter is None:
        return
    try:
        reporter(item)
    except Exception:
        log.exception("sandbox reporter failed")


def safe_name(text: str, limit: int = 40) -> str:
    """A fragment usable in container names and paths."""
    cleaned = re.sub(r"[^a-zA-Z0-9_.-]+", "-", text).strip("-.") or "x"
    return cleaned[:limit]


class BaseSandbox(ABC, Generic[H]):
    """The Sandbox protocol over backend hooks. Never blocks the loop; failures are results."""

    name: str = "base"
    grace_seconds: float = 5.0  # the host waits this long past the runner's own timeout
    startup_seconds: float = 30.0

    def __init__(self, reporter: Reporter | None = None, *, host: str = "local") -> None:
        self.reporter = reporter
        self.host = host
        self._slots: dict[str, Slot[H]] = {}
        self._opened = False
        self._closed = False

    # -- backend hooks --------------------------------------------------------------------

    async def _open(self) -> None:  # noqa: B027 - optional hook
        """Prepare the backend (connect, clean up leftovers). Called once, lazily."""

    async def _close(self) -> None:  # noqa: B027 - optional hook
        """Release what _open took."""

    @abstractmethod
    async def _spawn(self, slot: Slot[H]) -> H:
        """Start a runner for the slot and wait for its hello; raise SandboxError if it can't."""

    @abstractmethod
    async def _dispose(self, handle: H) -> None:
        """End a runner and everything it started. Must not raise."""

    @abstractmethod
    async def _died_of(self, handle: H, error: RunnerGone) -> tuple[FailureKind, str]:
        """Why a runner stopped answering (e.g. the container was OOM-killed)."""

    @abstractmethod
    async def _apply_cpus(self, handle: H, cpus: float) -> None:
        """Change a live runner's CPU quota."""

    def _meter(self, slot: Slot[H], handle: H) -> Meter:
        """How the host measures a call on this runner. The fallback is only a bound: wall
        time x the CPU quota the kernel holds the runner to."""
        return QuotaMeter(slot.limits.cpus)

    def _kill_now(self, handle: H) -> None:  # noqa: B027 - optional hook
        """Kill a runner at once, synchronously (the memory watchdog found it over limit)."""

    runner_kind: Literal["container", "process"]  # what a runner is, for the stats monitor

    def _target(self, slot: Slot[H]) -> StatTarget:
        """The slot as the stats monitor sees it."""
        return StatTarget(
            agent_id=slot.agent_id,
            backend=self.name,
            kind=self.runner_kind,
            ident=slot.handle.ident if slot.handle else None,
            status=slot.status,
            limits=slot.limits,
            restarts=slot.restarts,
            oom_kills=slot.oom_kills,
            host=self.host,
        )

    # -- the Sandbox protocol -------------------------------------------------------------

    async def open(self) -> None:
        if not self._opened:
            await self._open()
            self._opened = True

    async def start(self, agent_id: str, limits: SandboxLimits) -> None:
        if self._closed:
            raise SandboxError(f"the {self.name} sandbox is closed")
        await self.open()
        old = self._slots.get(agent_id)
        if old is not None and old.status != "stopped":
            if old.limits == limits:
                return
            await self.stop(agent_id)  # new limits: a fresh runner, not a patched one
        slot: Slot[H] = Slot(agent_id=agent_id, limits=limits)
        self._slots[agent_id] = slot
        async with slot.lock:
            try:
                slot.handle = await self._spawn(slot)
            except BaseException:
                slot.status = "gone"
                if self._slots.get(agent_id) is slot:
                    del self._slots[agent_id]
                raise
            slot.status = "running"
        self._report_stats(slot)

    async def stop(self, agent_id: str) -> None:
        slot = self._slots.pop(agent_id, None)
        if slot is None:
            return
        slot.status = "stopped"
        handle, slot.handle = slot.handle, None
        if handle is not None:
            # Not under the slot's lock: a call in flight ends with "sandbox stopped".
            await self._dispose(handle)
        self._report_stats(slot)

    async def run(
        self, agent_id: str, code: str, args: dict[str, Any], timeout: float
    ) -> RunResult:
        slot = self._slots.get(agent_id)
        if slot is None or slot.status == "stopped":
            return RunResult(
                ok=False, failure="sandbox", error=f"no sandbox is running for agent {agent_id}"
            )
        problem = check_request(code, args, timeout)
        if problem is not None:
            return RunResult(ok=False, failure="invalid", error=problem)
        async with slot.lock:
            if slot.abandoned and slot.handle is not None:
                slot.abandoned = False
                await self._respawn(slot, "a cancelled call left it busy")
            if slot.handle is None:
                revived = await self._respawn(slot, "its runner could not be started before")
                if not revived:
                    return RunResult(
                        ok=False,
                        failure="sandbox",
                        error=f"the sandbox of agent {agent_id} cannot start a runner",
                    )
            assert slot.handle is not None
            result = await self._call(slot, slot.handle, code, args, float(timeout))
            if slot.status == "stopped":
                return result
            if not result.ok and result.failure in REPLACE_AFTER:
                if result.failure == "oom":
                    slot.oom_kills += 1
                self._report(SandboxIncident(agent_id, result.failure, result.error or ""))
                replaced = await self._respawn(slot, f"after {result.failure}")
                result = dataclasses.replace(result, replaced=replaced)
            return result

    async def set_cpus(self, agent_id: str, cpus: float) -> None:
        slot = self._slots.get(agent_id)
        if slot is None:
            raise KeyError(f"no sandbox is running for agent {agent_id}")
        cpus = float(cpus)
        if not cpus >= 0:  # also refuses NaN
            raise ValueError(f"cpus must be zero or more, not {cpus!r}")
        # Zero (an agent that sold all its rate) is held at the backend's smallest quota.
        # Recorded first: a runner being replaced right now starts with the new quota.
        slot.limits = dataclasses.replace(slot.limits, cpus=cpus)
        if slot.handle is not None:
            await self._apply_cpus(slot.handle, cpus)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with anyio.CancelScope(shield=True):
            async with anyio.create_task_group() as tg:
                for agent_id in list(self._slots):
                    tg.start_soon(self.stop, agent_id)
            if self._opened:
                await self._close()

    async def __aenter__(self) -> BaseSandbox[H]:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- for the monitor and the UI -------------------------------------------------------

    async def monitor(self, interval: float = 1.0) -> None:
        """Publish SandboxStats of every agent through the reporter every `interval` seconds,
        until cancelled: start it in the world's task group (no import of containers needed)."""
        await StatsMonitor(self, self.reporter, interval).run()

    def agents(self) -> list[str]:
        return list(self._slots)

    def limits(self, agent_id: str) -> SandboxLimits:
        return self._slots[agent_id].limits

    def stat_targets(self) -> list[StatTarget]:
        return [self._target(slot) for slot in list(self._slots.values())]

    def facts(self, agent_id: str) -> dict[str, Any]:
        """What the agent's runner said about itself when it started (e.g. network_isolated)."""
        slot = self._slots.get(agent_id)
        return dict(slot.handle.facts) if slot and slot.handle else {}

    # -- internals ------------------------------------------------------------------------

    async def _call(
        self, slot: Slot[H], handle: H, code: str, args: dict[str, Any], timeout: float
    ) -> RunResult:
        meter = self._meter(slot, handle)
        over: list[str] = []

        def over_limit(why: str) -> None:
            over.append(why)
            self._kill_now(handle)  # its channel ends, and the call with it

        reply: Reply | None = None
        failure: FailureKind | None = None
        error = ""
        meter.begin()
        started = anyio.current_time()
        try:
            with anyio.fail_after(timeout + self.grace_seconds):
                reply = await self._exchange(handle, meter, over_limit, code, args, timeout)
        except anyio.get_cancelled_exc_class():
            slot.abandoned = True
            raise
        except TimeoutError:
            failure = "timeout"
            error = f"no answer within {timeout:g} s (the runner did not stop the call itself)"
        except ProtocolError as exc:
            failure, error = "protocol", f"the sandbox's reply was refused: {exc}"
        except RunnerGone as exc:
            if over:
                failure, error = "oom", over[0]
            elif slot.status == "stopped":
                failure, error = "sandbox", "the sandbox was stopped"
            else:
                failure, error = await self._died_of(handle, exc)
        wall = anyio.current_time() - started
        measure = meter.end(wall)
        if reply is not None and not over:
            return to_result(reply, measure, wall)
        if over:
            failure, error = "oom", over[0]
        return RunResult(
            ok=False,
            failure=failure,
            error=error,
            cpu_seconds=measure.cpu_seconds,
            peak_memory_bytes=measure.peak_memory_bytes,
            wall_seconds=wall,
        )

    @staticmethod
    async def _exchange(
        handle: H, meter: Meter, over_limit: Any, code: str, args: dict[str, Any], timeout: float
    ) -> Reply:
        """The call over the channel, with the meter's watchdog alongside when it has one."""
        if not meter.watches:
            return await handle.channel.call(code, args, timeout)
        outcome: list[Reply | RunnerGone] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(meter.watch, over_limit)
            try:
                outcome.append(await handle.channel.call(code, args, timeout))
            except RunnerGone as exc:  # raised after the group, not wrapped in a group
                outcome.append(exc)
            finally:
                tg.cancel_scope.cancel()
        if isinstance(outcome[0], RunnerGone):
            raise outcome[0]
        return outcome[0]

    async def _respawn(self, slot: Slot[H], why: str) -> bool:
        """Replace the slot's runner with a fresh one; False if no new runner could start."""
        if slot.status == "stopped":
            return False
        slot.status = "replacing"
        self._report_stats(slot)
        old, slot.handle = slot.handle, None
        if old is not None:
            await self._dispose(old)
        if slot.status == "stopped":
            return False
        try:
            handle = await self._spawn(slot)
        except SandboxError as exc:
            slot.status = "gone"
            self._report(SandboxIncident(slot.agent_id, "sandbox", f"cannot replace: {exc}"))
            return False
        if slot.status == "stopped":  # stopped while we were spawning
            await self._dispose(handle)
            return False
        slot.handle = handle
        slot.restarts += 1
        slot.status = "running"
        log.info("%s sandbox of %s replaced (%s)", self.name, slot.agent_id, why)
        self._report_stats(slot)
        return True

    def _report(self, item: SandboxStats | SandboxIncident) -> None:
        deliver(self.reporter, item)

    def _report_stats(self, slot: Slot[H]) -> None:
        """A status-only reading, so the UI sees starts, replacements and stops at once."""
        if self.reporter is None:
            return
        self._report(
            SandboxStats(
                agent_id=slot.agent_id,
                backend=self.name,
                status=slot.status,
                memory_limit_bytes=slot.limits.memory_bytes,
                restarts=slot.restarts,
                oom_kills=slot.oom_kills,
                cpus=slot.limits.cpus,
                host=self.host,
            )
        )
