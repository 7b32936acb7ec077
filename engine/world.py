"""The world: the composition root. Builds clock, ledger, artifacts, services and agents
from a `WorldConfig`, runs every loop in one anyio task group, and offers the operator's
API (the same invoke path agents use) plus read-only snapshots for the UI and reports.
"""

from __future__ import annotations

import math
import random
from typing import Any, Awaitable, Callable

import anyio

from .actions import Invoke, Result
from .agent import FROZEN, Agent
from .artifacts import ArtifactStore
from .brains import brain_class
from .clock import Clock, RealClock, VirtualClock
from .scheduler import Scheduler
from .config import WorldConfig
from .errors import Refusal
from .events import (
    AgentSpawned,
    ArtifactTransferred,
    EventBus,
    RateTransferred,
    SandboxIncidentEvent,
    SandboxStatsEvent,
    ScripTransferred,
)
from .sandbox import SandboxIncident, SandboxLimits, SandboxStats, billable_cpu_seconds
from .genesis.contracts import ContractsArtifact
from .genesis.ledger import LedgerArtifact
from .genesis.market import MarketArtifact
from .genesis.oracle import OracleArtifact
from .genesis.rights import RightsArtifact
from .genesis.world_control import WorldControlArtifact
from . import bounds
from .ledger import MICRO, Ledger, check_rate
from .metrics import Metrics
from .waist import OPERATOR, Waist

SYSTEM = "system"
MECHANISMS = (
    "bid", "resolution", "mint", "ubi", "listing_sold", "config_right_changed_hands",
    "config_changed", "rate_moved", "claim_changed_hands", "loan_offered", "loan_accepted",
    "loan_repaid", "loan_defaulted", "rescue", "spawn", "code_run", "sandbox_incident",
)


def agent_sort_key(agent_id: str) -> tuple[int, str]:
    """Ascending agent-id order: shorter ids first, so a0999 < a1000 and a10 > a9."""
    return (len(agent_id), agent_id)


class World:
    def __init__(
        self,
        config: WorldConfig,
        clock: Clock | None = None,
        sandbox: Any = None,
        sandbox_factory: Callable[[World], Awaitable[tuple[Any, str]]] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        """`progress(built, total)`, when given, hears how many agents are built, every
        few thousand: a world of a million takes a while, and the CLI says how far it is."""
        self.config = config
        self.seed = config.seed
        if clock is None:
            ck = config.clock
            clock = VirtualClock(ck.epoch) if ck.virtual else RealClock(ck.speed, ck.epoch)
        self.clock = clock
        self.scheduler = Scheduler(clock)
        self.bus = EventBus()
        self.ledger = Ledger(config.total_rate, config.llm_budget)
        self.artifacts = ArtifactStore(self.ledger)
        self.waist = Waist(self, config.costs.table(), config.compute.max_debt)
        # Where agents' code runs (engine.sandbox.Sandbox), or None. A factory, when given,
        # opens one as the world starts (containers/ picks Docker or subprocesses).
        self.sandbox = sandbox
        self.sandbox_factory = sandbox_factory
        self.sandbox_reason = "no sandbox: agents cannot run code" if sandbox is None else sandbox.name
        self.sandbox_stats: dict[str, SandboxStats] = {}
        self._sandboxes: dict[str, float] = {}  # agents whose sandbox is started -> its cpus
        self.journal = None  # engine.journal.Journal when the world is recorded
        self._started = False  # agents were first queued on the scheduler
        self.slice_actions = config.agents_policy.slice_actions
        self.agents: dict[str, Agent] = {}
        self.live_ids: list[str] = []  # agents not stopped, in creation order
        self.frozen: dict[str, None] = {}  # frozen agents, insertion-ordered for determinism
        self.paused = False
        self.running = False
        self.rate_listeners: list[Callable[[str, float], None]] = []
        self.services: dict[str, Any] = {}
        # How often each mechanism of the economy happened (the report's evidence).
        self.mechanisms: dict[str, int] = dict.fromkeys(MECHANISMS, 0)
        self._tg: anyio.abc.TaskGroup | None = None
        self._counters: dict[str, int] = {}
        now = clock.now()

        self.ledger.open_account(
            OPERATOR,
            scrip=config.operator.scrip,
            rate=config.operator_rate,
            capacity=config.operator.capacity,
            now=now,
            disk_quota=config.operator.disk_quota,
        )
        self.oracle = OracleArtifact(self)
        self.market = MarketArtifact(self)
        self.contracts = ContractsArtifact(self)
        for service in (
            LedgerArtifact(self), RightsArtifact(self), WorldControlArtifact(self),
            self.oracle, self.market, self.contracts,
        ):
            self.add_service(service)
        total, built = config.agent_count, 0
        for group in config.agents:
            for _ in range(group.count):
                if progress is not None and built % 5000 == 0:
                    progress(built, total)
                built += 1
                self._create_agent(
                    parent=SYSTEM,
                    brain=group.brain,
                    params=group.params,
                    scrip=group.scrip,
                    rate=group.rate,
                    capacity=config.compute.default_capacity if group.capacity is None else group.capacity,
                    think_delay=group.think_delay,
                    agent_id=self._next_id(group.prefix),
                    initial=True,
                )
        self.metrics = Metrics(self, config.metrics.interval, config.metrics.keep)

    # -- building ----------------------------------------------------------------------------
    def add_service(self, service) -> None:
        """A genesis artifact, and a principal of the same name that can hold custody
        (the market holds listed artifacts; held scrip is tracked in the ledger)."""
        now = self.clock.now()
        self.artifacts.create(SYSTEM, "genesis", service.describe(), now, service.id, charge_disk=False)
        self.ledger.open_account(service.id, scrip=0, rate=0.0, capacity=0.0, now=now, disk_quota=10**12)
        self.services[service.id] = service
        self.waist.register(service)

    def _next_id(self, prefix: str) -> str:
        self.ledger.undo.item(self._counters, prefix)
        n = self._counters.get(prefix, 0)
        while True:
            n += 1
            candidate = f"{prefix}{n:03d}"
            if candidate not in self.agents and not self.ledger.has(candidate):
                self._counters[prefix] = n
                return candidate

    def stream_seed(self, name: str) -> str:
        return f"{self.seed}:{name}"

    def rng_for(self, name: str) -> random.Random:
        # String seeds hash with SHA-512, independent of PYTHONHASHSEED: same seed, same world.
        return random.Random(self.stream_seed(name))

    # -- a checkpoint's view of the world's own books (engine/checkpoint.py composes them) ---------
    def dump_state(self) -> dict[str, Any]:
        return {
            "seed": self.seed, "paused": self.paused, "started": self._started, "ids": dict(self._counters),
            "mechanisms": dict(self.mechanisms), "live": list(self.live_ids), "frozen": list(self.frozen),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Take back dumped books (the agents are in `agents` already). Checked first."""
        ids, mechanisms = state["ids"], state["mechanisms"]
        if not (isinstance(ids, dict) and all(type(v) is int for v in ids.values())
                and isinstance(mechanisms, dict) and all(type(v) is int for v in mechanisms.values())):
            raise ValueError("the world's counters must be tables of whole numbers")
        live, frozen = state["live"], state["frozen"]
        if not all(a in self.agents for a in (*live, *frozen)):
            raise ValueError("the world's live or frozen agents name an agent it does not have")
        if type(state["started"]) is not bool or type(state["paused"]) is not bool or type(state["seed"]) is not int:
            raise ValueError("the world's seed, started and paused must be a number and flags")
        self.seed = state["seed"]
        self._counters = dict(ids)
        self.mechanisms = {**dict.fromkeys(MECHANISMS, 0), **mechanisms}
        self.live_ids[:] = live  # in place: every agent's view holds this list
        self.frozen = dict.fromkeys(frozen)
        self._started = state["started"]
        self.paused = state["paused"]
        if self.paused:
            self.clock.pause()

    def timers(self) -> dict[str, Any]:
        """The services' timers a checkpoint names in the scheduler's calendar."""
        return {name: timer for name, timer in (("oracle", self.oracle.timer), ("contracts", self.contracts.timer),
                                                ("metrics", self.metrics.timer)) if timer is not None}

    def _create_agent(
        self,
        *,
        parent: str,
        brain: str,
        params: dict[str, Any] | None,
        scrip: int,
        rate: float,
        capacity: float,
        think_delay: float,
        agent_id: str,
        initial: bool,
    ) -> Agent:
        now = self.clock.now()
        self.ledger.open_account(
            agent_id,
            scrip=scrip if initial else 0,
            rate=rate if initial else 0.0,
            capacity=capacity,
            now=now,
            disk_quota=self.config.agents_policy.disk_quota,
            initial=initial,
        )
        content = {"brain": brain, "params": dict(params or {}), "think_delay": think_delay}
        cfg = self.artifacts.create(agent_id, "config", content, now, f"config:{agent_id}", charge_disk=False)
        agent = Agent(self, agent_id, cfg, parent)
        undo = self.ledger.undo
        if undo.on:  # a spawn inside a genesis call
            undo.item(self.agents, agent_id)
            undo.call(self.live_ids.remove, agent_id)
        self.agents[agent_id] = agent
        self.live_ids.append(agent_id)
        return agent

    def spawn_agent(
        self,
        *,
        parent: str,
        brain: object,
        rate: object,
        scrip: object = 0,
        capacity: object = None,
        params: object = None,
        agent_id: object = None,
        think_delay: float = 0.0,
    ) -> str:
        """A new agent paid for by `parent` (scrip and compute rate). Checks everything
        before changing anything."""
        ledger = self.ledger
        now = self.clock.now()
        cls = brain_class(brain)
        if params is not None and not isinstance(params, dict):
            raise Refusal(f"params must be a table, got {bounds.shown(params)}", "invalid", "params")
        try:
            cls.validate_params(params)
        except Exception as e:  # pydantic's message names the parameter
            raise Refusal(f"bad params for {brain}: {e}".replace("\n", " "), "invalid") from None
        micro = check_rate(rate, "rate")
        rate = micro / MICRO
        scrip = bounds.PRICE.check(scrip, "scrip")
        if capacity is None:
            capacity = self.config.compute.default_capacity
        capacity = bounds.CAPACITY.check(capacity, "capacity")
        if agent_id is None:
            agent_id = self._next_id("a")
        elif not isinstance(agent_id, str) or not agent_id[:1].isalpha() or not agent_id.replace("-", "").replace("_", "").isalnum() or len(agent_id) > 32:
            raise Refusal(f"invalid agent id {bounds.shown(agent_id)}: a letter then letters, digits, '-' or '_'",
                          "invalid", "agent_id")
        if ledger.has(agent_id) or agent_id in self.artifacts:
            raise Refusal(f"{agent_id!r} is already taken", "exists")
        if ledger.scrip[parent] < scrip:
            raise Refusal(f"insufficient scrip: have {ledger.scrip[parent]}, need {scrip}", "insufficient")
        if ledger.rate_micro[parent] - ledger.sliced_micro.get(parent, 0) < micro:
            raise Refusal(f"insufficient rate: have {ledger.buckets[parent].rate:g}, need {rate:g}", "insufficient",
                          "rate")
        agent = self._create_agent(
            parent=parent, brain=brain, params=params, scrip=0, rate=0.0,
            capacity=float(capacity), think_delay=think_delay, agent_id=agent_id, initial=False,
        )
        if scrip:
            ledger.transfer_scrip(parent, agent_id, scrip)
        ledger.move_rate(parent, agent_id, micro, now)
        self.bus.publish(AgentSpawned(now, agent_id, parent, brain, scrip, rate))
        self.count("spawn")
        if self._started:  # last: the one step a failing call could not put back
            self.scheduler.ready(agent)
        return agent_id

    # -- running ------------------------------------------------------------------------------
    def _start(self, fn: Callable[[], Any]) -> None:
        """Start an engine task. It counts as runnable from now, before it first runs, so a
        virtual clock cannot jump past a task that has not started yet."""
        scheduler = self.scheduler
        scheduler.task_started()

        async def task() -> None:
            try:
                await fn()
            finally:
                scheduler.task_finished()

        self._tg.start_soon(task, name=getattr(fn, "__qualname__", None))

    def attach_journal(self, path, commit_interval: float = 0.1, fresh: bool = True, **options: Any):
        """Record this world in a SQLite journal (see engine/journal.py; `options` are the
        Journal's: checkpoint_every, meta)."""
        from .journal import Journal

        self.journal = Journal(self, path, commit_interval, fresh=fresh, **options)
        return self.journal

    async def run(self, duration: float | None = None, final_window: bool = True, until: float | None = None) -> None:
        """Run every loop for `duration` more world seconds (forever if None): everything
        due before then, nothing due at the end itself (that is the next run's first
        instant), so two runs of 30 s do what one of 60 s does. The end closes a last
        metrics window (unless `final_window` is False: a replay stepping to a moment).
        `until`, instead of `duration`: the world time to stop at."""
        self.running = True
        opened = False
        stop = None
        try:
            if self.sandbox is None and self.sandbox_factory is not None:
                self.sandbox, self.sandbox_reason = await self.sandbox_factory(self)
                opened = True
            async with anyio.create_task_group() as tg:
                self._tg = tg
                if self.journal is not None:
                    self.journal.start_checkpoints()  # before anything runs: the first may be now
                tg.start_soon(self.scheduler.run)
                if self.journal is not None:
                    tg.start_soon(self.journal.run)
                if self.sandbox is not None and hasattr(self.sandbox, "monitor"):
                    tg.start_soon(self.sandbox.monitor, self.config.sandbox.monitor_interval)
                if not self._started:  # timers and agents stay scheduled from one run to the next
                    self._started = True
                    self.metrics.start()
                    self.oracle.start()
                    self.contracts.start()
                    for agent in self.agents.values():
                        if not agent.stopped:
                            self.scheduler.ready(agent)
                if duration is not None or until is not None:
                    end = until if until is not None else self.clock.now() + duration
                    stop = self.scheduler.mark_at(end, lambda now: self._stop_at(now, tg.cancel_scope, final_window))
        finally:
            if stop is not None:
                stop.cancel()  # a run ended early must not stop the next one
            self._tg = None
            self.running = False
            if self.journal is not None:
                with anyio.CancelScope(shield=True):
                    await self.journal.flush()
            if opened and self.sandbox is not None:
                with anyio.CancelScope(shield=True):
                    await self.sandbox.close()

    def _stop_at(self, now: float, scope: anyio.CancelScope, final_window: bool = True) -> None:
        self.scheduler.halt()  # nothing more runs in this burst, and time moves no further
        if final_window:
            self.metrics.close_window(now, final=True)
        if self.journal is not None:  # the world as it ends: a resume goes on from here exactly
            self.journal.checkpoint(now, "end")
        scope.cancel()

    # Due work: something outside world time that must run by a real (monotonic) moment (a
    # journal commit). The scheduler runs it between two items of a burst as soon as it
    # falls due, so it never waits behind a round of the world.
    def schedule_due(self, at: float, work: Callable[[], None] | None) -> None:
        """Have `work` (synchronous, quick) run once soon after the monotonic moment `at`."""
        self.scheduler.schedule_due(at, work)

    def run_due(self) -> None:
        """Run the due work now (the scheduler found it due, or its owner's timer fired)."""
        self.scheduler.run_due()

    @property
    def due_at(self) -> float:
        return self.scheduler.due_at

    def stop(self) -> None:
        if self._tg is not None:
            self._tg.cancel_scope.cancel()

    # -- steering (operator) ----------------------------------------------------------------
    def invoke(self, target: str, method: str, arguments: dict[str, Any] | None = None, /,
               principal: str = OPERATOR, **args: Any) -> Result:
        """Invoke a genesis method through the narrow waist, as the operator by default.
        Arguments come as keywords, or as a dict when one is named like `principal`."""
        result = self._invoke(target, method, arguments, principal, args)
        if result.__class__ is not Result:
            result.close()  # a coroutine: code artifacts need invoke_async
            return Result(False, None, f"{target} is not a service; use invoke_async for code", "invalid")
        return result

    async def invoke_async(self, target: str, method: str, arguments: dict[str, Any] | None = None, /,
                           principal: str = OPERATOR, **args: Any) -> Result:
        """The same, for invoking code artifacts too (they await a sandbox)."""
        result = self._invoke(target, method, arguments, principal, args)
        if result.__class__ is not Result:
            result = await result
        return result

    def _invoke(self, target: str, method: str, arguments: dict[str, Any] | None, principal: object,
                args: dict[str, Any]):
        if arguments is not None:
            # not a table: the waist refuses it (a dict merge would raise here)
            args = {**arguments, **args} if type(arguments) is dict else arguments
        if not isinstance(principal, str) or not self.ledger.has(principal):
            return Result(False, None, f"unknown principal {bounds.shown(principal)}", "unknown", "principal")
        result = self.waist.perform(principal, Invoke(target, method, args), self.clock.now())
        if principal == OPERATOR and self.journal is not None and result.__class__ is Result and result.ok:
            # Replay re-runs the world between checkpoints; an operator's act is not in the
            # world's own rules, so the world after it is checkpointed.
            self.journal.checkpoint(self.clock.now(), "operator")
        return result

    def set_paused(self, paused: bool) -> None:
        self.paused = paused
        if paused:
            self.clock.pause()
        else:
            self.clock.resume()
        for agent in self.agents.values():
            agent.refresh_held()

    def require_agent(self, agent_id: object) -> Agent:
        agent = self.agents.get(agent_id) if isinstance(agent_id, str) else None
        if agent is None:
            raise Refusal(f"unknown agent {agent_id!r}", "unknown")
        return agent

    # -- moving artifacts (transfers, sales, custody) ------------------------------------------
    def move_artifact(self, artifact_id: str, frm: str, to: str, now: float):
        """Change an artifact's owner, with what its kind implies: a rate slice's rate moves
        with it. Everything that can refuse is checked before anything changes."""
        art = self.artifacts.get(artifact_id)
        if to in self.services and to != "market":
            raise Refusal(f"{to} is a service and cannot own artifacts", "invalid")
        if (art.kind == "contract" and art.content["status"] not in ("active", "defaulted")
                and not (frm == "market" and to == self.market.seller_of(artifact_id))):  # (a return is fine)
            raise Refusal(f"{art.id} is {art.content['status']}: only an accepted loan is a claim to sell", "invalid")
        self.artifacts.transfer(artifact_id, frm, to, now)
        self.bus.publish(ArtifactTransferred(now, art.id, frm, to))
        if art.kind == "rate":
            micro = art.content["micro"]
            self.ledger.move_slice(frm, to, micro, now)
            self.bus.publish(RateTransferred(now, frm, to, micro / MICRO))
            self.rate_changed(frm)
            self.rate_changed(to)
            if to != "market":
                self.count("rate_moved")
        self.ledger.undo.item(art.meta, "holder")
        if to != "market":
            # A change of hands: custody by the market and a cancelled listing are not.
            previous = art.meta.get("holder", frm)
            if previous != to:
                art.meta["holder"] = to
                if art.kind == "config":
                    self.count("config_right_changed_hands")
                elif art.kind == "contract":
                    self.count("claim_changed_hands")
        elif "holder" not in art.meta:
            art.meta["holder"] = frm
        return art

    def count(self, mechanism: str) -> None:
        self.ledger.undo.item(self.mechanisms, mechanism)
        self.mechanisms[mechanism] = self.mechanisms.get(mechanism, 0) + 1

    # -- hooks the agents and services call -------------------------------------------------
    def status_changed(self, agent_id: str, status: str) -> None:
        if status == FROZEN:
            self.frozen[agent_id] = None
        else:
            self.frozen.pop(agent_id, None)

    def rate_changed(self, principal: str) -> None:
        agent = self.agents.get(principal)
        if agent is None:
            return
        agent.wake_if_frozen()
        rate = self.ledger.buckets[principal].rate
        if principal in self._sandboxes and self._tg is not None:
            # Its container's CPU quota follows its rate (a real Docker update, off the hot path).
            cpus = self.cpus_for(principal)
            self._sandboxes[principal] = cpus
            self._tg.start_soon(self.sandbox.set_cpus, principal, cpus)
        for listener in self.rate_listeners:
            listener(principal, rate)

    # -- running agents' code ---------------------------------------------------------------
    def cpus_for(self, principal: str) -> float:
        return self.ledger.buckets[principal].rate / self.config.compute.compute_per_cpu

    async def run_code(self, principal: str, action: Invoke, now: float) -> Result:
        """Run a code artifact's `run(**args)` in the caller's own sandbox: the caller pays
        the owner's price first, then the CPU time the call really used, as compute."""
        art = self.artifacts.get(action.target)
        if art.kind != "code":
            raise Refusal(f"{art.id} is a {art.kind} artifact, not code; only code can be invoked", "invalid")
        if action.method != "run":
            raise Refusal(f"code artifacts have one method, run; not {action.method!r}", "unknown")
        if type(action.args) is not dict:
            raise Refusal(f"arguments must be a table of name = value, got {action.args!r}", "invalid")
        if self.sandbox is None:
            raise Refusal(f"running code needs a sandbox, and this world has none ({self.sandbox_reason})", "unavailable")
        price = art.meta.get("price", 0) if art.owner != principal else 0
        owner = art.owner
        if price:
            self.ledger.hold(principal, price, "sandbox")  # escrow while the code runs
        cfg = self.config.sandbox
        try:
            if principal not in self._sandboxes:
                limits = SandboxLimits(
                    cpus=self.cpus_for(principal), memory_bytes=cfg.memory_mb * 2**20,
                    pids=cfg.pids, tmpfs_bytes=cfg.tmpfs_mb * 2**20,
                )
                self._sandboxes[principal] = limits.cpus
                await self.sandbox.start(principal, limits)
            outcome = await self.sandbox.run(principal, art.content, action.args, cfg.timeout)
        except Exception as e:  # the sandbox itself broke: the caller gets its price back
            if price:
                self.ledger.release("sandbox", price, principal)
            self._sandboxes.pop(principal, None)
            raise Refusal(f"the sandbox failed: {type(e).__name__}: {e}", "sandbox") from None
        if price:  # the call happened (whatever its outcome): the owner is paid
            self.ledger.release("sandbox", price, owner if self.ledger.has(owner) else principal)
            self.bus.publish(ScripTransferred(self.clock.now(), principal, owner, price))
        # Real constraints: the CPU the call used, as the host measured it (a finite figure
        # >= 0, never one from inside the sandbox), is charged and may put the caller in debt.
        cpu_seconds = billable_cpu_seconds(outcome)
        cost = cpu_seconds * self.config.compute.compute_per_cpu
        if principal in self.ledger.buckets and principal != OPERATOR:
            self.ledger.buckets[principal].spend(cost, self.clock.now())
        self.count("code_run")
        value = {"value": outcome.value, "cpu_seconds": cpu_seconds, "compute": cost,
                 "peak_memory_bytes": outcome.peak_memory_bytes, "paid": price}
        if outcome.ok:
            return Result(True, value)
        return Result(False, value, f"{art.id} failed ({outcome.failure}): {outcome.error}", outcome.failure)

    def report_sandbox(self, item: SandboxStats | SandboxIncident) -> None:
        """The sandbox's reporter: latest stats per agent, and events (stats coalesce)."""
        now = self.clock.now()
        if isinstance(item, SandboxStats):
            self.sandbox_stats[item.agent_id] = item
            self.bus.publish(SandboxStatsEvent(now, item.agent_id, item))
        else:
            self.count("sandbox_incident")
            self.bus.publish(SandboxIncidentEvent(now, item.agent_id, item.kind, item.detail))

    def agent_stopped(self, agent_id: str) -> None:
        if agent_id in self.live_ids:
            self.live_ids.remove(agent_id)
        self.frozen.pop(agent_id, None)
        if agent_id in self._sandboxes and self._tg is not None:
            del self._sandboxes[agent_id]
            self._tg.start_soon(self.sandbox.stop, agent_id)

    # -- reading -------------------------------------------------------------------------------
    def frozen_ids(self) -> list[str]:
        return list(self.frozen)

    def next_resolution_in(self, now: float) -> float:
        interval = self.config.oracle.resolution_interval
        return (math.floor(now / interval) + 1) * interval - now

    def balances(self, principal: str) -> dict[str, Any]:
        ledger = self.ledger
        b = ledger.buckets[principal]
        return {
            "principal": principal,
            "scrip": ledger.scrip[principal],
            "compute": b.peek(self.clock.now()),
            "rate": b.rate,
            "capacity": b.capacity,
            "disk_used": ledger.disk_used[principal],
            "disk_quota": ledger.disk_quota[principal],
        }

    def invariants(self) -> dict[str, bool]:
        inv = self.ledger.invariants()
        slices: dict[str, int] = {}
        for art in self.artifacts.by_id.values():
            if art.kind == "rate":
                slices[art.owner] = slices.get(art.owner, 0) + art.content["micro"]
        inv["slices_match_artifacts"] = all(
            slices.get(p, 0) == self.ledger.sliced_micro.get(p, 0) for p in self.ledger.rate_micro
        )
        inv["held_matches_open_obligations"] = self.ledger.held.get("oracle", 0) == sum(
            b.amount for b in self.oracle.bids.values()
        ) and self.ledger.held.get("contracts", 0) == sum(
            a.content["principal"] for a in self.contracts.contracts.values() if a.content["status"] == "offered"
        )
        return inv

    @property
    def total_actions(self) -> int:
        return sum(a.actions for a in self.agents.values())
