"""An agent: one continuous loop (SPEC §3) and the states it passes through.

    wait while held (paused, crashed, stopped) -> wait while frozen (compute debt)
    -> re-read config if it changed -> observe -> think -> charge -> act -> record -> loop

The loop only awaits when it has to wait. A turn that needs no waiting runs straight into
the next one, and the agent yields to the scheduler once every `slice_actions` turns: one
checkpoint costs about as much as a whole turn, so checkpointing per action would halve
the world's speed, while a bounded slice keeps every other task (and the UI) responsive.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import anyio

from .actions import Action, Invoke, Result, Sleep
from .brains import build_brain
from .events import AgentStatusChanged, BrainFailed

if TYPE_CHECKING:
    from .artifacts import Artifact
    from .clock import Waiter
    from .llm_access import LLMAccess
    from .world import World

THINKING = "thinking"
ACTING = "acting"
SLEEPING = "sleeping"
FROZEN = "frozen"
PAUSED = "paused"
CRASHED = "crashed"
STOPPED = "stopped"
STATUSES = (THINKING, ACTING, SLEEPING, FROZEN, PAUSED, CRASHED, STOPPED)
NEWSWORTHY = frozenset({FROZEN, PAUSED, CRASHED, STOPPED})

# A balance this close to zero counts as paid off: waiting exactly -balance/rate seconds
# can leave a rounding residue of a few ulps.
THAW_EPSILON = 1e-9


class AgentView:
    """What an agent observes: live state read on demand, with the time injected.

    One view per agent is reused across turns (only `now` and `last_result` change), so
    observing costs nothing until a brain asks for something.
    """

    __slots__ = ("_agent", "_world", "_scrip", "id", "now", "last_result", "rng")

    def __init__(self, agent: Agent) -> None:
        self._agent = agent
        self._world = agent.world
        self._scrip = agent.world.ledger.scrip  # the live dict; read on every Boltzmann turn
        self.id = agent.id
        self.now = 0.0
        self.last_result: Result | None = None
        self.rng = agent.rng

    @property
    def wall_time(self) -> str:
        return self._world.clock.wall_time(self.now)

    @property
    def next_resolution_in(self) -> float | None:
        return self._world.next_resolution_in(self.now)

    @property
    def scrip(self) -> int:
        return self._scrip[self.id]

    @property
    def compute(self) -> float:
        return self._world.ledger.buckets[self.id].peek(self.now)

    @property
    def rate(self) -> float:
        return self._world.ledger.buckets[self.id].rate

    @property
    def capacity(self) -> float:
        return self._world.ledger.buckets[self.id].capacity

    def random_other(self) -> str | None:
        """A uniformly random other live agent, from the agent's own random stream."""
        ids = self._world.live_ids
        n = len(ids)
        if n < 2:
            return None
        rnd = self.rng.random
        while True:
            other = ids[int(rnd() * n)]
            if other != self.id:
                return other

    @property
    def llm(self) -> LLMAccess:
        """An LLM brain's narrow access to the world: its budget, vocabulary and records."""
        from .llm_access import LLMAccess

        return LLMAccess(self._world, self.id)

    @property
    def params(self) -> dict[str, Any]:
        return self._agent.config.get("params", {})

    def scrip_of(self, principal: str) -> int:
        return self._world.ledger.scrip.get(principal, 0)

    def status_of(self, agent_id: str) -> str | None:
        a = self._world.agents.get(agent_id)
        return None if a is None else a.status

    def frozen_agents(self) -> list[str]:
        return self._world.frozen_ids()

    def compute_of(self, principal: str) -> float:
        b = self._world.ledger.buckets.get(principal)
        return 0.0 if b is None else b.peek(self.now)

    def owned(self, kind: str | None = None) -> list[str]:
        return [a.id for a in self._world.artifacts.owned_by(self.id) if kind is None or a.kind == kind]

    # -- the economy, as the agent can see it (reading is free; acting goes through invoke) --
    def listings(self, kind: str | None = None) -> list[Any]:
        return [x for x in self._world.market.open.values() if kind is None or x.artifact_kind == kind]

    def contracts(self, role: str = "debtor") -> list[tuple[str, dict[str, Any]]]:
        """(contract id, terms) where this agent is the debtor, lender or holder."""
        c = self._world.contracts
        if role == "holder":
            return [(cid, a.content) for cid, a in c.contracts.items() if c.holder(cid) == self.id]
        return [(cid, a.content) for cid, a in c.contracts.items() if a.content[role] == self.id]

    def owed(self, contract_id: str) -> int:
        c = self._world.contracts
        return c.owed(c.contracts[contract_id].content, self.now)

    def credit(self, principal: str) -> dict[str, Any]:
        return self._world.contracts.credit_record(principal, self.now)

    def open_bid(self, artifact_id: str) -> int | None:
        bid = self._world.oracle.bids.get((self.id, artifact_id))
        return None if bid is None else bid.amount

    @property
    def min_bid(self) -> int:
        return self._world.config.oracle.min_bid

    def config_rights(self) -> list[str]:
        """Agents whose config right this agent owns, other than itself."""
        return [a.id for a in self._world.agents.values() if a.config_artifact.owner == self.id and a.id != self.id]

    def code_artifacts(self) -> list[str]:
        """Every code artifact in the world (agents may run others' code, paying its price)."""
        return [a.id for a in self._world.artifacts.by_id.values() if a.kind == "code"]

    def content_of(self, artifact_id: str) -> Any:
        art = self._world.artifacts.by_id.get(artifact_id)
        return None if art is None else art.content

    def others_with_prefix(self, prefix: str) -> list[str]:
        return [a for a in self._world.live_ids if a.startswith(prefix) and a != self.id]

    def free_rate(self) -> float:
        ledger = self._world.ledger
        return (ledger.rate_micro[self.id] - ledger.sliced_micro.get(self.id, 0)) / 1_000_000

    def as_dict(self) -> dict[str, Any]:
        """The full observation, for brains that want everything (e.g. an LLM prompt)."""
        return {
            "agent_id": self.id,
            "wall_time": self.wall_time,
            "world_time_s": round(self.now, 3),
            "next_resolution_in_s": self.next_resolution_in,
            "scrip": self.scrip,
            "compute": round(self.compute, 3),
            "rate": self.rate,
            "capacity": self.capacity,
            "owned_artifacts": self.owned(),
            "last_result": None
            if self.last_result is None
            else {"ok": self.last_result.ok, "value": self.last_result.value, "error": self.last_result.error},
        }


class Agent:
    def __init__(self, world: World, agent_id: str, config_artifact: Artifact, parent: str) -> None:
        self.world = world
        self.id = agent_id
        self.parent = parent
        self.config_artifact = config_artifact
        self.config: dict[str, Any] = {}
        self._config_version = -1
        self.rng = world.rng_for(agent_id)
        self.brain = None
        self.think_delay = 0.0
        self.status = SLEEPING
        self.detail = ""
        self.actions = 0
        self.refused = 0
        self.failures = 0  # consecutive brain failures
        self.total_failures = 0
        self.last_action: Action | None = None
        self.last_error = ""
        self.frozen_since: float | None = None
        self.times_frozen = 0
        self.paused = False
        self.crashed = False
        self.stopped = False
        # Any reason not to run: world paused, paused, crashed, stopped. An agent spawned
        # into a paused world waits for the resume like everyone else.
        self.held = world.paused
        self._waiter: Waiter | None = None
        self._predicate = None
        self.view = AgentView(self)
        self._apply_config()

    # -- config ---------------------------------------------------------------------------------
    def _apply_config(self) -> None:
        """Follow the config artifact: whoever owns the config right may have changed it."""
        cfg = self.config_artifact.content
        old = self.config
        self.config = cfg
        self._config_version = self.config_artifact.version
        if self.brain is None or old.get("brain") != cfg.get("brain") or old.get("params") != cfg.get("params"):
            self.brain = build_brain(cfg["brain"], cfg.get("params", {}), self.rng)
        self.think_delay = float(cfg.get("think_delay", 0.0))
        self._slow_thinker = self.think_delay > 0 or self.brain.is_async

    # -- state --------------------------------------------------------------------------------
    def _set_status(self, status: str, detail: str = "") -> None:
        if status != self.status or detail != self.detail:
            was = self.status
            self.status = status
            self.detail = detail
            world = self.world
            if status == FROZEN or was == FROZEN:
                world.status_changed(self.id, status)
            # Thawing and waking are the normal rhythm of a loop; only entering a state that
            # stops an agent is news worth an event.
            if status in NEWSWORTHY:
                world.bus.publish(AgentStatusChanged(world.clock.now(), self.id, status, detail))

    def refresh_held(self) -> None:
        held = self.world.paused or self.paused or self.crashed or self.stopped
        self.held = held
        # Wake only a held agent being released (a resume must not cut a sleep short), or
        # a stopped one wherever it waits, so its loop can end.
        if self.stopped or (not held and self.status in (PAUSED, CRASHED)):
            self.wake("released")

    def wake(self, reason: str) -> None:
        w = self._waiter
        if w is not None:
            w.wake(reason)

    def wake_if_frozen(self) -> None:
        """Its rate changed or compute arrived: a frozen agent recomputes its thaw time."""
        if self.status == FROZEN:
            self.wake("holdings")

    def _holdings_changed(self, _principal: str) -> None:
        """Ledger callback while frozen or sleeping on a predicate (rescue, transfer, rate)."""
        if self.status == FROZEN:
            self.wake("holdings")
        elif self._predicate is not None:
            try:
                ok = bool(self._predicate(self.view))
            except Exception:
                ok = True  # a broken predicate must not keep the agent asleep forever
            if ok:
                self.wake("condition")

    async def _wait(self, deadline: float | None) -> str:
        w = self.world.clock.waiter(deadline)
        self._waiter = w
        try:
            return await w.wait()
        finally:
            self._waiter = None

    # -- the loop -------------------------------------------------------------------------------
    async def run(self) -> None:
        """The loop; started by the world, which counts it as an engine task."""
        await self._loop(self.world, self.world.clock)

    async def _loop(self, world: World, clock) -> None:
        bucket = world.ledger.buckets[self.id]
        perform = world.waist.perform
        view = self.view
        agent_id = self.id
        cfg_artifact = self.config_artifact
        slice_actions = world.slice_actions
        checkpoint = anyio.lowlevel.checkpoint
        monotonic = time.monotonic
        turns = 0
        # World time is read once per slice and again after every await: nothing else runs
        # between two awaits, so within a slice the world stands at one instant.
        now = None
        while True:
            # Back from an await (a slice's end, a sleep, a thaw): run any work due outside
            # the agents (a journal commit) before this agent's turn, and any other's.
            if now is None and world.due_at <= monotonic():
                world.run_due()
            if self.held:
                if self.stopped:
                    self._set_status(STOPPED)
                    return
                await self._hold()
                now = None
                continue
            if now is None:
                now = clock.now()
                self.status = THINKING
            balance = bucket.balance if bucket.last_update == now else bucket.accrue(now)
            if balance < -THAW_EPSILON:
                await self._freeze()
                now = None
                continue
            if cfg_artifact.version != self._config_version:
                self._apply_config()
            brain = self.brain
            try:
                if self._slow_thinker:
                    action = await self._think_slowly(brain)
                    now = view.now
                    if action is None:  # held while it thought
                        now = None
                        continue
                else:
                    view.now = now
                    action = brain.decide(view)
                result = perform(agent_id, action, now, brain.thought_cost)
                if result.__class__ is not Result:  # code running in a sandbox
                    self.status = ACTING
                    result = await result
                    now = None
            except Exception as exc:  # a brain (or its action) failed: back off, maybe crash
                await self._failed(exc)
                now = None
                continue
            if self.failures:
                self.failures = 0
            self.actions += 1
            self.last_action = action  # described only when someone looks (snapshot)
            view.last_result = result
            if not result.ok:
                self.refused += 1
                if result.code == "max_debt":
                    await self._over_max_debt(action)
                    now = None
                    continue
            elif type(action) is Sleep:
                # A sleep that needs no waiting (zero seconds, a condition already true)
                # still counts as a turn, so the slice below bounds it like any other.
                await self._sleep(action)
                now = None
            turns += 1
            if turns >= slice_actions:
                turns = 0
                await checkpoint()
                now = None

    async def _think_slowly(self, brain) -> Action | None:
        """A thought that takes time (a think delay, an LLM call): the status shows it."""
        self.status = THINKING
        clock = self.world.clock
        if self.think_delay > 0:
            await self._wait(clock.now() + self.think_delay)
            if self.held:
                return None
        self.view.now = clock.now()
        action = brain.decide(self.view)
        if brain.is_async:
            action = await action
            self.view.now = clock.now()
        return action

    async def _hold(self) -> None:
        self._set_status(CRASHED if self.crashed else PAUSED, self.last_error if self.crashed else "")
        while self.held and not self.stopped:
            await self._wait(None)

    async def _freeze(self) -> None:
        """Wait exactly until the debt is paid off by accrual, or earlier by a rescue."""
        world = self.world
        clock = world.clock
        bucket = world.ledger.buckets[self.id]
        self.frozen_since = clock.now()
        self.times_frozen += 1
        self._set_status(FROZEN, f"debt {-bucket.balance:.2f}")
        world.ledger.watchers[self.id] = self._holdings_changed
        try:
            while not self.held:
                now = clock.now()
                wait = bucket.time_until_non_negative(now)
                if bucket.balance >= -THAW_EPSILON:
                    break
                await self._wait(None if math.isinf(wait) else now + wait)
        finally:
            world.ledger.watchers.pop(self.id, None)
            self.frozen_since = None
        if bucket.balance < 0:
            bucket.balance = 0.0  # rounding residue of an exact thaw
        if not self.held:
            self._set_status(THINKING, "thawed")

    async def _over_max_debt(self, action) -> None:
        """The action would pass max_debt: wait until it would fit (or the bucket is full)."""
        world = self.world
        now = world.clock.now()
        bucket = world.ledger.buckets[self.id]
        need = world.waist.cost_of(action) - (world.waist.max_debt or 0.0)
        target = min(bucket.capacity, need)
        balance = bucket.accrue(now)
        if bucket.rate > 0 and balance < target:
            wait = (target - balance) / bucket.rate
        else:
            # Even a full bucket cannot pay for it: waiting for accrual will not help, so back
            # off like a failed turn instead of asking again at the same instant.
            wait = world.config.agents_policy.backoff_base
        self._set_status(FROZEN, "saving for an action past max debt")
        await self._wait(now + wait)
        if not self.held:
            self._set_status(THINKING, "saved up")

    async def _sleep(self, action: Sleep) -> None:
        world = self.world
        now = world.clock.now()
        deadline = None
        if action.seconds is not None:
            deadline = now + max(0.0, float(action.seconds))
        elif action.timeout is not None:
            deadline = now + max(0.0, float(action.timeout))
        if action.until is not None:
            self._predicate = action.until
            if action.until(self.view):
                self._predicate = None
                return
        self._set_status(SLEEPING, action.describe())
        w = world.clock.waiter(deadline)
        self._waiter = w
        if action.until_event:
            world.bus.wake_on(action.until_event, self.id if action.only_mine else None, w)
        if self._predicate is not None:
            world.ledger.watchers[self.id] = self._holdings_changed
        try:
            reason = await w.wait()
        finally:
            self._waiter = None
            if self._predicate is not None:
                world.ledger.watchers.pop(self.id, None)
                self._predicate = None
        self.view.last_result = Result(True, {"woke": reason})

    async def _failed(self, exc: Exception) -> None:
        world = self.world
        self.failures += 1
        self.total_failures += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        world.bus.publish(BrainFailed(world.clock.now(), self.id, self.last_error, self.failures))
        if self.failures >= world.config.agents_policy.max_failures:
            self.crashed = True
            self.refresh_held()
            return
        backoff = min(
            world.config.agents_policy.backoff_base * 2 ** (self.failures - 1),
            world.config.agents_policy.backoff_max,
        )
        self._set_status(SLEEPING, f"backing off {backoff:g}s after: {self.last_error}")
        await self._wait(world.clock.now() + backoff)

    def restart(self) -> None:
        """Operator: clear a crash and let the loop run again."""
        self.crashed = False
        self.failures = 0
        self.last_error = ""
        self.refresh_held()

    def snapshot(self, now: float) -> dict[str, Any]:
        ledger = self.world.ledger
        b = ledger.buckets[self.id]
        return {
            "id": self.id,
            "status": self.status,
            "detail": self.detail,
            "brain": self.config.get("brain"),
            "scrip": ledger.scrip[self.id],
            "compute_balance": round(b.peek(now), 6),
            "rate": b.rate,
            "capacity": b.capacity,
            "actions": self.actions,
            "refused": self.refused,
            "failures": self.total_failures,
            "times_frozen": self.times_frozen,
            "last_action": "" if self.last_action is None else self.last_action.describe(),
            "config_owner": self.config_artifact.owner,
        }


__all__ = ["Agent", "AgentView", "STATUSES", "Invoke"]
