"""The world: the composition root. Builds clock, ledger, artifacts, services and agents
from a `WorldConfig`, runs every loop in one anyio task group, and offers the operator's
API (the same invoke path agents use) plus read-only snapshots for the UI and reports.

The domain rules live in the services (`engine/genesis/`), the books in `engine.ledger`,
the loop in the agent, the waist and the scheduler; the world wires them together and is
the `Services` (engine.ports) every genesis service is built with.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Coroutine

import anyio
import anyio.abc

from .actions import Action, Invoke, Result
from .agent import Agent
from .artifacts import ArtifactStore
from .brains import brain_class
from .clock import Clock, RealClock, VirtualClock
from .scheduler import Scheduler
from .config import WorldConfig
from .errors import Refusal
from .events import AgentSpawned, EventBus
from .genesis.base import GenesisArtifact
from .genesis.code_runs import CodeRuns
from .genesis.contracts import ContractsArtifact
from .genesis.accounts import AccountsArtifact
from .genesis.market import MarketArtifact
from .genesis.oracle import OracleArtifact
from .genesis.rights import RightsArtifact
from .genesis.world_control import WorldControlArtifact
from . import bounds
from .ledger import MICRO, Ledger, check_rate
from .ids import FROZEN, OPERATOR, SYSTEM
from .metrics import Metrics
from .waist import Waist

if TYPE_CHECKING:
    from .journal import Journal
    from .sandbox import Sandbox, SandboxIncident, SandboxStats

# What opens a world's sandbox as it starts: (the sandbox or None, why code can or cannot run).
SandboxFactory = Callable[["World"], Awaitable[tuple["Sandbox | None", str]]]
MECHANISMS = (
    "bid", "resolution", "mint", "ubi", "listing_sold", "config_right_changed_hands",
    "config_changed", "rate_moved", "claim_changed_hands", "loan_offered", "loan_accepted",
    "loan_repaid", "loan_defaulted", "rescue", "spawn", "code_run", "sandbox_incident",
)


class World:
    def __init__(
        self,
        config: WorldConfig,
        clock: Clock | None = None,
        sandbox: Sandbox | None = None,
        sandbox_factory: SandboxFactory | None = None,
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
        self.code_runs = CodeRuns(self, sandbox)
        self.sandbox_factory = sandbox_factory
        self.journal: Journal | None = None  # set when the world is recorded (engine.journal)
        self.keep_history: bool = False  # agents keep their recent actions and freezes (agent.remember_history)
        self._started = False  # agents were first queued on the scheduler
        self.slice_actions = config.agents_policy.slice_actions
        self.agents: dict[str, Agent] = {}
        self.live_ids: list[str] = []  # agents not stopped, in creation order
        self.frozen: dict[str, None] = {}  # frozen agents, insertion-ordered for determinism
        self.paused: bool = False
        self.running = False
        self.rate_listeners: list[Callable[[str, float], None]] = []
        self.services: dict[str, GenesisArtifact] = {}
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
            AccountsArtifact(self), RightsArtifact(self), WorldControlArtifact(self),
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
    def add_service(self, service: GenesisArtifact) -> None:
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
            raise Refusal(f"bad params for {brain}: {e}".replace("\n", " "), "invalid", "params") from None
        micro = check_rate(rate, "rate")
        endowment: int = bounds.PRICE.check(scrip, "scrip")
        cap: float = bounds.CAPACITY.check(self.config.compute.default_capacity if capacity is None else capacity,
                                           "capacity")
        if agent_id is None:
            agent_id = self._next_id("a")
        elif not isinstance(agent_id, str) or not agent_id[:1].isalpha() or not agent_id.replace("-", "").replace("_", "").isalnum() or len(agent_id) > 32:
            raise Refusal(f"invalid agent id {bounds.shown(agent_id)}: a letter then letters, digits, '-' or '_'",
                          "invalid", "agent_id")
        if ledger.has(agent_id) or agent_id in self.artifacts:
            raise Refusal(f"{agent_id!r} is already taken", "exists", "agent_id")
        if ledger.scrip[parent] < endowment:
            raise Refusal(f"insufficient scrip: have {ledger.scrip[parent]}, need {endowment}", "insufficient", "scrip")
        if ledger.rate_micro[parent] - ledger.sliced_micro.get(parent, 0) < micro:
            raise Refusal(f"insufficient rate: have {ledger.buckets[parent].rate:g}, need {micro / MICRO:g}",
                          "insufficient", "rate")
        agent = self._create_agent(
            parent=parent, brain=cls.name, params=params, scrip=0, rate=0.0,
            capacity=float(cap), think_delay=think_delay, agent_id=agent_id, initial=False,
        )
        if endowment:
            ledger.transfer_scrip(parent, agent_id, endowment)
        ledger.move_rate(parent, agent_id, micro, now)
        self.bus.publish(AgentSpawned(now, agent_id, parent, cls.name, endowment, micro / MICRO))
        self.count("spawn")
        if self._started:  # last: the one step a failing call could not put back
            self.scheduler.ready(agent)
        return agent_id

    # -- running ------------------------------------------------------------------------------
    def attach_journal(self, path: str | Path, commit_interval: float = 0.1, fresh: bool = True,
                       **options: Any) -> Journal:
        """Record this world in a SQLite journal (see engine/journal.py; `options` are the
        Journal's: checkpoint_every, meta)."""
        from .journal import Journal  # the journal sits above the world (pyproject: ignore_imports)

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
                    end = until if until is not None else self.clock.now() + (duration or 0.0)  # (one is given)
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

    def background(self, fn: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> bool:
        """Start `fn(*args)` beside the running world (a sandbox's Docker update, say): not an
        engine task, so world time does not wait for it. False when the world is not running."""
        if self._tg is None:
            return False
        self._tg.start_soon(fn, *args)
        return True

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

    def act(self, action: Action, principal: str = OPERATOR) -> Result:
        """Carry out an action that is not a service's method (write, read, delete) through
        the narrow waist, as the operator by default: the UI's other lever, beside `invoke`."""
        if not isinstance(action, Action):
            return Result(False, None, f"not an action: {bounds.shown(action)}", "invalid", "action")
        if type(action) is Invoke:
            return self.invoke(action.target, action.method, action.args, principal=principal)
        result = self._perform(principal, action)
        if result.__class__ is not Result:  # only code invocations await; this is not one
            result.close()
            return Result(False, None, "this action needs invoke_async", "invalid")
        return result

    def _invoke(self, target: str, method: str, arguments: dict[str, Any] | None, principal: object,
                args: dict[str, Any]):
        if arguments is not None:
            # not a table: the waist refuses it (a dict merge would raise here)
            args = {**arguments, **args} if type(arguments) is dict else arguments
        return self._perform(principal, Invoke(target, method, args))

    def _perform(self, principal: object, action: Action):
        if not isinstance(principal, str) or not self.ledger.has(principal):
            return Result(False, None, f"unknown principal {bounds.shown(principal)}", "unknown", "principal")
        result = self.waist.perform(principal, action, self.clock.now())
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

    def require_agent(self, agent_id: object, arg: str = "agent") -> Agent:
        """The live agent named by argument `arg`, or a refusal about that argument."""
        agent = self.agents.get(agent_id) if isinstance(agent_id, str) else None
        if agent is None:
            raise Refusal(f"unknown agent {bounds.shown(agent_id)}", "unknown", arg)
        return agent

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
        self.code_runs.rate_changed(principal)
        for listener in self.rate_listeners:
            listener(principal, rate)

    # -- running agents' code (engine/genesis/code_runs.py) ----------------------------------
    @property
    def sandbox(self) -> Sandbox | None:
        return self.code_runs.sandbox

    @sandbox.setter
    def sandbox(self, sandbox: Sandbox | None) -> None:
        self.code_runs.sandbox = sandbox

    @property
    def sandbox_reason(self) -> str:
        """Why agents' code can or cannot run here (the sandbox's name, or a refusal)."""
        return self.code_runs.reason

    @sandbox_reason.setter
    def sandbox_reason(self, reason: str) -> None:
        self.code_runs.reason = reason

    @property
    def sandbox_stats(self) -> dict[str, SandboxStats]:
        return self.code_runs.stats

    def cpus_for(self, principal: str) -> float:
        return self.code_runs.cpus_for(principal)

    def report_sandbox(self, item: SandboxStats | SandboxIncident) -> None:
        """The reporter a sandbox is opened with (containers/)."""
        self.code_runs.report(item)

    def agent_stopped(self, agent_id: str) -> None:
        if agent_id in self.live_ids:
            self.live_ids.remove(agent_id)
        self.frozen.pop(agent_id, None)
        self.code_runs.agent_stopped(agent_id)

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
        inv["indexes_match"] = self.artifacts.by_id.consistent() and self.contracts.contracts.consistent()
        return inv

    @property
    def total_actions(self) -> int:
        return sum(a.actions for a in self.agents.values())
