"""Running agents' code: a code artifact's `run(**args)` in the caller's own sandbox.

The caller pays the owner's price into escrow first, the sandbox runs the code, then the
owner is paid (or the caller refunded if the sandbox itself broke) and the CPU time the
host measured is charged as compute. Each agent's sandbox starts on its first run, its CPU
quota follows its compute rate, and it stops when the agent stops. The sandbox itself is
anything that speaks `engine.sandbox.Sandbox` (containers/ implements it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..actions import Result
from ..errors import Refusal
from ..events import SandboxIncidentEvent, SandboxStatsEvent, ScripTransferred
from ..ids import OPERATOR
from ..sandbox import SandboxIncident, SandboxLimits, SandboxStats, billable_cpu_seconds

if TYPE_CHECKING:
    from ..actions import Invoke
    from ..ports import Services
    from ..sandbox import Sandbox

ESCROW = "sandbox"  # where a run's price is held while the code runs
NO_SANDBOX = "no sandbox: agents cannot run code"


class CodeRuns:
    """The world's code runner: its sandbox, the agents' sandboxes started, their stats."""

    def __init__(self, world: Services, sandbox: Sandbox | None = None) -> None:
        self.world = world
        self.sandbox = sandbox
        self.reason = NO_SANDBOX if sandbox is None else sandbox.name  # why code can or cannot run
        self.stats: dict[str, SandboxStats] = {}  # the latest reading of each agent's sandbox
        self._started: dict[str, float] = {}  # agents whose sandbox is started -> its cpus

    def cpus_for(self, principal: str) -> float:
        world = self.world
        return world.ledger.buckets[principal].rate / world.config.compute.compute_per_cpu

    async def run(self, principal: str, action: Invoke, now: float) -> Result:
        """Run a code artifact's `run(**args)` in the caller's own sandbox: the caller pays
        the owner's price first, then the CPU time the call really used, as compute."""
        world = self.world
        ledger = world.ledger
        art = world.artifacts.get(action.target, "target")
        if art.kind != "code":
            raise Refusal(f"{art.id} is a {art.kind} artifact, not code; only code can be invoked", "invalid")
        if action.method != "run":
            raise Refusal(f"code artifacts have one method, run; not {action.method!r}", "unknown")
        if type(action.args) is not dict:
            raise Refusal(f"arguments must be a table of name = value, got {action.args!r}", "invalid")
        sandbox = self.sandbox
        if sandbox is None:
            raise Refusal(f"running code needs a sandbox, and this world has none ({self.reason})", "unavailable")
        price = art.meta.get("price", 0) if art.owner != principal else 0
        owner = art.owner
        if price:
            ledger.hold(principal, price, ESCROW)  # escrow while the code runs
        cfg = world.config.sandbox
        try:
            if principal not in self._started:
                limits = SandboxLimits(
                    cpus=self.cpus_for(principal), memory_bytes=cfg.memory_mb * 2**20,
                    pids=cfg.pids, tmpfs_bytes=cfg.tmpfs_mb * 2**20,
                )
                self._started[principal] = limits.cpus
                await sandbox.start(principal, limits)
            outcome = await sandbox.run(principal, art.content, action.args, cfg.timeout)
        except Exception as e:  # the sandbox itself broke: the caller gets its price back
            if price:
                ledger.release(ESCROW, price, principal)
            self._started.pop(principal, None)
            raise Refusal(f"the sandbox failed: {type(e).__name__}: {e}", "sandbox") from None
        if price:  # the call happened (whatever its outcome): the owner is paid
            ledger.release(ESCROW, price, owner if ledger.has(owner) else principal)
            world.bus.publish(ScripTransferred(world.clock.now(), principal, owner, price))
        # Real constraints: the CPU the call used, as the host measured it (a finite figure
        # >= 0, never one from inside the sandbox), is charged and may put the caller in debt.
        cpu_seconds = billable_cpu_seconds(outcome)
        cost = cpu_seconds * world.config.compute.compute_per_cpu
        if principal in ledger.buckets and principal != OPERATOR:
            ledger.buckets[principal].spend(cost, world.clock.now())
        world.count("code_run")
        value = {"value": outcome.value, "cpu_seconds": cpu_seconds, "compute": cost,
                 "peak_memory_bytes": outcome.peak_memory_bytes, "paid": price}
        if outcome.ok:
            return Result(True, value)
        return Result(False, value, f"{art.id} failed ({outcome.failure}): {outcome.error}", outcome.failure)

    def report(self, item: SandboxStats | SandboxIncident) -> None:
        """The sandbox's reporter: latest stats per agent, and events (stats coalesce)."""
        world = self.world
        now = world.clock.now()
        if isinstance(item, SandboxStats):
            self.stats[item.agent_id] = item
            world.bus.publish(SandboxStatsEvent(now, item.agent_id, item))
        else:
            world.count("sandbox_incident")
            world.bus.publish(SandboxIncidentEvent(now, item.agent_id, item.kind, item.detail))

    def rate_changed(self, principal: str) -> None:
        """Its container's CPU quota follows its rate (a real Docker update, off the hot path)."""
        sandbox = self.sandbox
        if principal in self._started and sandbox is not None:
            cpus = self.cpus_for(principal)
            if self.world.background(sandbox.set_cpus, principal, cpus):
                self._started[principal] = cpus

    def agent_stopped(self, agent_id: str) -> None:
        sandbox = self.sandbox
        if agent_id in self._started and sandbox is not None and self.world.background(sandbox.stop, agent_id):
            del self._started[agent_id]


__all__ = ["ESCROW", "NO_SANDBOX", "CodeRuns"]
