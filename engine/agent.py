"""An agent: one continuous loop (SPEC §3) and the states it passes through.

    wait while held (paused, crashed, stopped) -> wait while frozen (compute debt)
    -> re-read config if it changed -> observe -> think -> charge -> act -> record -> loop

The loop is driven by the scheduler (engine/scheduler.py): `turn(now)` is a plain call that
runs the loop until the agent must wait, registers that wait (a heap entry for a thaw, a
sleep or a back-off; a ticket with the event bus; a watcher with the ledger; nothing while
held) and returns. Any of those wakes it: the wake invalidates the others (its token moves
on) and puts it on the scheduler's ready queue. A turn that needs no waiting runs straight
into the next, up to `slice_actions` turns, then the agent goes to the back of the queue so
that everyone else (and the UI, between bursts) gets a turn. A thought or an action that
must await (an LLM call, a think delay, a sandbox) leaves as async work and comes back
through the ready queue when it ends.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from . import random_stream
from .actions import CONDITIONS, Action, Described, Invoke, Result, Sleep
from .brains import build_brain
from .events import AgentStatusChanged, BrainFailed
from .ids import ACTING, CRASHED, FROZEN, NEWSWORTHY, PAUSED, SLEEPING, STATUSES, STOPPED, THINKING
from .llm_access import LLMAccess
from .plain import decode, encode

if TYPE_CHECKING:
    from .artifacts import Artifact
    from .brains import Brain
    from .world import World

# A balance this close to zero counts as paid off: waiting exactly -balance/rate seconds
# can leave a rounding residue of a few ulps.
THAW_EPSILON = 1e-9
# What an agent remembers of itself for the app's history: its last actions (world time,
# action, result, thought cost) and last freezes, in bounded rings. Only when the world is
# asked to (`remember_history`, as the app does): a headless run pays nothing for them.
RECENT_ACTIONS = 24
RECENT_FREEZES = 16


def remember_history(world: World) -> None:
    """Have every agent of `world`, and every agent spawned later, keep its rings."""
    world.keep_history = True  # read by Agent.__init__ for agents to come
    for agent in world.agents.values():
        if agent.recent_actions is None:
            agent.recent_actions = deque(maxlen=RECENT_ACTIONS)
            agent.freezes = deque(maxlen=RECENT_FREEZES)


@dataclass(slots=True)
class Freeze:
    """One freeze: when, how deep, the rate it thaws at, the action whose charge caused it
    (the last one taken), and, once over, how long it lasted and how it ended ("paid off",
    or "held": paused or stopped first). A thaw sooner than debt / rate came from a rescue
    or a raise of the rate; `seq` is the bus's count when it began, so what came after it
    (a rescue at the same instant, say) can be told from what came before."""

    t: float
    debt: float
    rate: float
    cause: Action | None
    seq: int = 0
    length: float | None = None
    ended: str = ""


class AgentView:
    """What an agent observes: live state read on demand, with the time injected.

    One view per agent is reused across turns (only `now` and `last_result` change), so
    observing costs nothing until a brain asks for something.
    """

    __slots__ = ("_agent", "_world", "_scrip", "_live", "id", "now", "last_result", "rng")

    def __init__(self, agent: Agent) -> None:
        self._agent = agent
        self._world = agent.world
        self._scrip = agent.world.ledger.scrip  # the live dict; read on every Boltzmann turn
        self._live = agent.world.live_ids  # the live list (the world changes it in place)
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
        ids = self._live
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

    def owned(self, kind: str | None = None) -> list[str]:
        return [a.id for a in self._world.artifacts.owned_by(self.id) if kind is None or a.kind == kind]

    # -- the economy, as the agent can see it (reading is free; acting goes through invoke) --
    def listings(self, kind: str | None = None) -> list[Any]:
        return [x for x in self._world.market.open.values() if kind is None or x.artifact_kind == kind]

    def contracts(self, role: str = "debtor") -> list[tuple[str, dict[str, Any]]]:
        """(contract id, terms) where this agent is the debtor, lender or holder."""
        c = self._world.contracts
        me = self.id
        if role == "holder":  # (c.holder, inlined: this is asked at most turns of a lender)
            seller_of = self._world.market.seller_of
            return [(cid, a.content) for cid, a in c.contracts.items()
                    if (owner := a.owner) == me or (owner == "market" and (seller_of(cid) or owner) == me)]
        if role not in ("lender", "debtor"):
            raise ValueError(f"a contract's role is lender, debtor or holder, not {role!r}")
        return [(a.id, a.content) for a in c.contracts.find((role, me))]

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
        world, me = self._world, self.id
        agents = world.agents
        return [aid for a in world.artifacts.owned_by(me) if a.kind == "config"
                and (aid := a.id[7:]) != me and aid in agents and agents[aid].config_artifact is a]

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


# Where a turn picks up after a wait that was not a plain "run the loop again".
FRESH, DELAYED, THOUGHT, ACTED, SLEPT, SAVED = range(6)


class _Ticket:
    """An agent's registration with the event bus for one sleep. It goes stale as soon as
    the agent wakes for any reason (the agent's token moves on), so registrations left
    under other kinds are harmless; the bus prunes them as they accumulate."""

    __slots__ = ("agent", "token")

    def __init__(self, agent: Agent, token: int) -> None:
        self.agent = agent
        self.token = token

    @property
    def woken(self) -> bool:
        return self.agent._token != self.token

    def wake(self, reason: str) -> None:
        if self.agent._token == self.token:
            self.agent.wake(reason)


class Agent:
    __slots__ = (
        "world", "id", "parent", "config_artifact", "config", "_config_version", "rng", "rng_seed", "brain",
        "think_delay", "_slow_thinker", "status", "detail", "actions", "refused", "failures",
        "total_failures", "last_action", "last_error", "frozen_since", "times_frozen", "paused",
        "crashed", "stopped", "held", "view", "_sched", "_bucket", "_token", "_waiting", "_timed",
        "_watch", "_predicate", "_stage", "_pending", "_pending_action", "wake_reason",
        "_on_holdings", "_on_compute", "recent_actions", "freezes", "__weakref__",
    )
    brain: Brain[Any]  # built from the config by _apply_config, rebuilt when it changes

    def __init__(self, world: World, agent_id: str, config_artifact: Artifact, parent: str) -> None:
        self.world = world
        self.id = agent_id
        self.parent = parent
        self.config_artifact = config_artifact
        self.config: dict[str, Any] = {}
        self._config_version = -1
        self.rng_seed = world.stream_seed(agent_id)
        self.rng = world.rng_for(agent_id)
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
        keep = world.keep_history
        # (world time, action, result, thought cost): a brain never changes an action it
        # has handed to the world, so the action shows what was asked then
        self.recent_actions: deque[tuple[float, Action, Result, float]] | None = (
            deque(maxlen=RECENT_ACTIONS) if keep else None)
        self.freezes: deque[Freeze] | None = deque(maxlen=RECENT_FREEZES) if keep else None
        self.paused = False
        self.crashed = False
        self.stopped = False
        # Any reason not to run: world paused, paused, crashed, stopped. An agent spawned
        # into a paused world waits for the resume like everyone else.
        self.held = world.paused
        self.view = AgentView(self)
        # The scheduler's side (engine/scheduler.py): what the agent waits for, and how a
        # wake finds it. `_token` moves on at every wake, so every registration made for the
        # wait before (a heap entry, a bus ticket) is stale at once.
        self._sched = world.scheduler
        self._bucket = world.ledger.buckets[agent_id]
        self._token = 0
        self._waiting = False  # parked, registered for a wake
        self._timed = False  # with a live entry in the scheduler's heap
        self._watch: dict[str, Any] | None = None  # the ledger's watcher table it is in
        self._predicate: Callable[[Any], bool] | None = None  # a sleep's condition on the view
        self._stage = FRESH
        self._pending: Any = None  # what async work brought back: an action, a result, an error
        self._pending_action: Action | None = None
        self.wake_reason = ""
        self._on_holdings = self._holdings_changed  # bound once: registering is hot
        self._on_compute = self._compute_changed
        self._apply_config()

    # -- config ---------------------------------------------------------------------------------
    def _apply_config(self) -> None:
        """Follow the config artifact: whoever owns the config right may have changed it."""
        cfg = self.config_artifact.content
        old = self.config
        self.config = cfg
        self._config_version = self.config_artifact.version
        # (the first time, `old` is empty: a config always names its brain)
        if old.get("brain") != cfg.get("brain") or old.get("params") != cfg.get("params"):
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

    # -- waking ---------------------------------------------------------------------------------
    def wake(self, reason: str) -> None:
        """End the agent's wait, whatever it waits for, and queue its turn."""
        if not self._waiting:
            return
        self._woken(reason)  # the token moves on first: counting the stale entry may compact
        if self._timed:
            self._timed = False
            self._sched.stale()
        self._sched.ready(self)

    def _woken(self, reason: str) -> None:
        self._waiting = False
        self._token += 1
        self.wake_reason = reason
        watch = self._watch
        if watch is not None:
            watch.pop(self.id, None)
            self._watch = None
        self._predicate = None

    def wake_if_frozen(self) -> None:
        """Its rate changed or compute arrived: a frozen agent recomputes its thaw time."""
        if self.status == FROZEN:
            self.wake("holdings")

    def _compute_changed(self, _principal: str) -> None:
        """Ledger callback while frozen: a rescue or a rate change moves the thaw."""
        self.wake("holdings")

    def _holdings_changed(self, _principal: str) -> None:
        """Ledger callback while sleeping on a predicate (a transfer, a rescue, a rate)."""
        predicate = self._predicate
        if predicate is None:
            return
        try:
            ok = bool(predicate(self.view))
        except Exception:
            ok = True  # a broken predicate must not keep the agent asleep forever
        if ok:
            self.wake("condition")

    def _wait_until(self, due: float) -> None:
        self._waiting = True
        self._timed = True
        self._sched.at(due, self, self._token)

    # -- the loop -------------------------------------------------------------------------------
    def turn(self, now: float) -> None:
        """Run the loop from where it left off until the agent must wait (module doc)."""
        if self._waiting:  # its entry in the scheduler's calendar fell due: a thaw, a deadline
            # What _woken("deadline") does, inlined: the hot path of every thaw.
            self._waiting = self._timed = False
            self._token += 1
            self.wake_reason = "deadline"
            if self._watch is not None:
                self._watch.pop(self.id, None)
                self._watch = None
            self._predicate = None
        if self._stage:
            stage = self._stage
            if self.held:
                self._park_held()  # the stage is kept: it picks up there once released
                return
            self._stage = FRESH
            if not self._resume(stage, now):
                return
        world = self.world
        bucket = self._bucket
        view = self.view
        brain = self.brain
        perform = world.waist.perform
        agent_id = self.id
        cfg_artifact = self.config_artifact
        left = world.slice_actions
        while True:
            if self.held:
                self._park_held()
                return
            # The bucket's accrual, inlined (bucket.accrue): this is the hottest line.
            elapsed = now - bucket.last_update
            if elapsed > 0:
                balance = bucket.balance + elapsed * bucket.rate
                bucket.balance = balance = balance if balance < bucket.capacity else bucket.capacity
                bucket.last_update = now
            else:
                balance = bucket.balance
            status = self.status
            if balance < -THAW_EPSILON:
                # Frozen: wait exactly -balance/rate, or less if a rescue or a rate change
                # comes first (the ledger calls back). Inlined for the same reason.
                if status != FROZEN:
                    self.frozen_since = now
                    self.times_frozen += 1
                    self.status = FROZEN
                    self.detail = ""  # the debt is shown live from the bucket
                    world.frozen[agent_id] = None
                    world.bus.emit(AgentStatusChanged, now, (agent_id, FROZEN, ""))
                    if self.freezes is not None:
                        self.freezes.append(Freeze(now, -balance, bucket.rate, self.last_action, world.bus.seq))
                self._waiting = True
                watchers = world.ledger.compute_watchers
                watchers[agent_id] = self._on_compute
                self._watch = watchers
                rate = bucket.rate
                if rate > 0:
                    self._timed = True
                    self._sched.at(now - balance / rate, self, self._token)
                return
            if status != THINKING:
                if status == FROZEN:
                    if balance < 0:
                        bucket.balance = 0.0  # the rounding residue of an exact thaw
                    self._freeze_over(now, "paid off")
                    self.frozen_since = None
                    world.frozen.pop(agent_id, None)
                    self.detail = "thawed"
                self.status = THINKING
            if cfg_artifact.version != self._config_version:
                self._apply_config()
                brain = self.brain
            if self._slow_thinker:
                self._think_slowly(now)
                return
            view.now = now
            try:
                action = brain.decide(view)
                result = perform(agent_id, action, now, brain.thought_cost)
            except Exception as exc:  # a brain (or its action) failed: back off, maybe crash
                self._failed(exc, now)
                return
            if result.__class__ is not Result:  # code running in a sandbox
                self._act_async(action, result)
                return
            # Recording the result: `_record` does the same for turns that resume.
            self.actions += 1
            self.last_action = action  # described only when someone looks (snapshot)
            if self.recent_actions is not None:
                self.recent_actions.append((now, action, result, brain.thought_cost))
            view.last_result = result
            if self.failures:
                self.failures = 0
            if not result.ok:
                self.refused += 1
                if result.code == "max_debt":
                    self._save_for(action, now)
                    return
            elif action.__class__ is Sleep and self._sleep(action, now):
                return
            left -= 1
            if left <= 0:  # a slice's worth of turns: to the back of the queue
                self._sched.ready(self)
                return

    def _resume(self, stage: int, now: float) -> bool:
        """Pick up after a wait that was part of a turn; True to go on with the loop."""
        view = self.view
        if stage == SLEPT:
            view.last_result = Result(True, {"woke": self.wake_reason})
            return True
        if stage == SAVED:
            self._set_status(THINKING, "saved up")
            return True
        if stage == DELAYED:  # the think delay is over: think now
            if self.brain.is_async:
                self._think_async(now)
                return False
            view.now = now
            try:
                action = self.brain.decide(view)
            except Exception as exc:
                self._failed(exc, now)
                return False
            return self._act(action, now)
        pending, self._pending = self._pending, None
        if isinstance(pending, Exception):
            self._failed(pending, now)
            return False
        if stage == THOUGHT:  # an async brain answered
            return self._act(pending, now)
        kept, self._pending_action = self._pending_action, None  # ACTED: a sandbox answered
        assert kept is not None  # (_act_async kept it)
        return self._record(kept, pending, now)

    def _act(self, action: Action, now: float) -> bool:
        try:
            result = self.world.waist.perform(self.id, action, now, self.brain.thought_cost)
        except Exception as exc:
            self._failed(exc, now)
            return False
        if result.__class__ is not Result:
            self._act_async(action, result)
            return False
        return self._record(action, result, now)

    def _record(self, action: Action, result: Result, now: float) -> bool:
        self.actions += 1
        self.last_action = action
        if self.recent_actions is not None:
            self.recent_actions.append((now, action, result, self.brain.thought_cost))
        self.view.last_result = result
        if self.failures:
            self.failures = 0
        if not result.ok:
            self.refused += 1
            if result.code == "max_debt":
                self._save_for(action, now)
                return False
        elif action.__class__ is Sleep and self._sleep(action, now):
            return False
        return True

    # -- waits that leave the turn -------------------------------------------------------------
    def _think_slowly(self, now: float) -> None:
        """A thought that takes time (a think delay, an LLM call): the status shows it."""
        self.status = THINKING
        if self.think_delay > 0:
            self._stage = DELAYED
            self._wait_until(now + self.think_delay)
        else:
            self._think_async(now)

    def _think_async(self, now: float) -> None:
        self.view.now = now
        try:
            thought: Any = self.brain.decide(self.view)  # an async brain's: an awaitable action
        except Exception as exc:
            self._failed(exc, now)
            return
        self._stage = THOUGHT
        self._sched.spawn(self, thought, self._landed)

    def _act_async(self, action: Action, outcome) -> None:
        self.status = ACTING
        self._stage = ACTED
        self._pending_action = action
        self._sched.spawn(self, outcome, self._landed)

    def _landed(self, outcome: Any) -> None:
        """What async work of a turn brought back (an action, a result, an error); None
        when the run ended under it, and the turn starts afresh next time."""
        if outcome is None:
            self._stage = FRESH
            self._pending_action = None
        self._pending = outcome

    def _freeze_over(self, now: float, how: str) -> None:
        freezes = self.freezes
        if freezes and freezes[-1].length is None:  # None (not kept) or empty: nothing to close
            freezes[-1].length = now - freezes[-1].t
            freezes[-1].ended = how

    def _park_held(self) -> None:
        if self.status == FROZEN:
            self._freeze_over(self.world.clock.now(), "held")
        if self.stopped:
            self._set_status(STOPPED)
            return  # never scheduled again
        self._set_status(CRASHED if self.crashed else PAUSED, self.last_error if self.crashed else "")
        self._waiting = True  # until refresh_held() releases it

    def _save_for(self, action: Action, now: float) -> None:
        """The action would pass max_debt: wait until it would fit (or the bucket is full)."""
        world = self.world
        bucket = self._bucket
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
        self._stage = SAVED
        self._wait_until(now + wait)

    def _sleep(self, action: Sleep, now: float) -> bool:
        """Lie down as the action asks. False when no wait is needed (a condition already
        true, a deadline already past): that still counts as a turn."""
        deadline = None
        if action.seconds is not None:
            deadline = now + max(0.0, float(action.seconds))
        elif action.timeout is not None:
            deadline = now + max(0.0, float(action.timeout))
        until = action.until
        if until is not None:
            try:
                if until(self.view):
                    return False
            except Exception:
                return False  # a broken predicate counts as true, as when woken
        if deadline is not None and deadline <= now:
            self.view.last_result = Result(True, {"woke": "deadline"})
            return False
        world = self.world
        self._set_status(SLEEPING, action.describe())
        self._stage = SLEPT
        self._waiting = True
        if until is not None:
            self._predicate = until
            world.ledger.watchers[self.id] = self._on_holdings
            self._watch = world.ledger.watchers
        if action.until_event:
            world.bus.wake_on(action.until_event, self.id if action.only_mine else None, _Ticket(self, self._token))
        if deadline is not None:
            self._timed = True
            self._sched.at(deadline, self, self._token)
        return True

    def _failed(self, exc: Exception, now: float) -> None:
        world = self.world
        self.failures += 1
        self.total_failures += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        world.bus.publish(BrainFailed(now, self.id, self.last_error, self.failures))
        policy = world.config.agents_policy
        if self.failures >= policy.max_failures:
            self.crashed = True
            self.refresh_held()
            self._park_held()
            return
        backoff = min(policy.backoff_base * 2 ** (self.failures - 1), policy.backoff_max)
        self._set_status(SLEEPING, f"backing off {backoff:g}s after: {self.last_error}")
        self._wait_until(now + backoff)

    def restart(self) -> None:
        """Operator: clear a crash and let the loop run again."""
        self.crashed = False
        self.failures = 0
        self.last_error = ""
        self.refresh_held()

    # -- a checkpoint's view of the agent (engine/checkpoint.py composes it) ----------------------
    def ticket(self) -> _Ticket:
        """A registration with the event bus for the agent's current wait."""
        return _Ticket(self, self._token)

    def dump(self, cursor: random_stream.StreamCursor) -> dict[str, Any]:
        """Everything the loop needs to go on as it would have: counters, flags, where its
        turn picks up, what it waits for (its calendar entry and bus tickets are the
        scheduler's and the bus's to dump), its last result, brain memory and random stream."""
        watch = None
        if self._watch is not None:
            watch = "compute" if self._watch is self.world.ledger.compute_watchers else "holdings"
        until = None
        if self._predicate is not None:
            until = self._predicate.dump() if hasattr(self._predicate, "dump") else ["unknown"]
        stage = self._stage
        requeue = stage in (THOUGHT, ACTED)  # async work in flight (real time): the turn starts afresh
        result = self.view.last_result
        return {
            "parent": self.parent, "status": self.status, "detail": self.detail,
            "actions": self.actions, "refused": self.refused, "failures": self.failures,
            "total_failures": self.total_failures, "times_frozen": self.times_frozen,
            "frozen_since": self.frozen_since, "last_error": self.last_error,
            "last_action": None if self.last_action is None else self.last_action.describe(),
            "paused": self.paused, "crashed": self.crashed, "stopped": self.stopped, "held": self.held,
            "waiting": self._waiting and not requeue, "watch": watch, "until": until,
            "stage": FRESH if requeue else stage, "requeue": requeue, "wake_reason": self.wake_reason,
            "config_version": self._config_version,
            "config": None if self.config is self.config_artifact.content else encode(self.config),
            "result": None if result is None else [result.ok, encode(result.value), result.error, result.code,
                                                   result.arg],
            "stream": random_stream.dump(self.rng, self.rng_seed, cursor),
            "brain": self.brain.dump(),
        }

    def dump_key(self) -> tuple:
        """Equal keys, equal dumps: what `dump` reads that can change, cheaply, so a writer
        checkpointing again and again reuses the JSON of an agent that has not moved (in a
        busy world, about half of them between two checkpoints). The brain's memory and
        the random stream change only when the brain decides, which always moves `actions`
        or `total_failures`; an action re-aimed by its brain, a new result or a new sleep
        condition only come with one as well; every wake moves `_token`."""
        return (self.actions, self.total_failures, self._token, self.refused, self.failures, self.status,
                self.detail, self.times_frozen, self.frozen_since, self.last_error, self.paused, self.crashed,
                self.stopped, self.held, self._waiting, self._stage, self.wake_reason, self._config_version,
                self.config is self.config_artifact.content, self.parent, self.rng_seed,
                self._watch is None, self._watch is self.world.ledger.compute_watchers)

    def load(self, state: dict[str, Any], memo: dict | None = None) -> bool:
        """Take back a dumped agent (built from its config artifact, not yet run). Checks
        every field before setting any. True when its turn must be queued (`requeue`)."""
        _check_agent_state(state)
        world = self.world
        config = self.config_artifact.content if state["config"] is None else decode(state["config"])
        if not isinstance(config, dict) or not isinstance(config.get("brain"), str):
            raise ValueError(f"agent {self.id}: its running config is not a config")
        until = state["until"]
        predicate = None
        if until is not None:
            factory = CONDITIONS.get(until[0]) if until and type(until[0]) is str else None
            if factory is not None:
                if not all(type(a) in (int, float, str) for a in until[1:]):
                    raise ValueError(f"agent {self.id}: a condition's arguments must be plain values")
                predicate = factory(*until[1:])
            else:  # a condition no checkpoint could keep: it holds at the next change
                predicate = _always
        if config is not self.config:  # the config it ran under, before a change it has not seen
            self.config = config
            self.brain = build_brain(config["brain"], config.get("params", {}), self.rng)
            self.think_delay = float(config.get("think_delay", 0.0))
            self._slow_thinker = self.think_delay > 0 or self.brain.is_async
        self.brain.load(state["brain"])
        # The one generator the agent, its view and its brain share; as built, it is fresh
        # from the agent's seed string.
        random_stream.restore_into(self.rng, state["stream"], memo, seeded=self.rng_seed)
        if type(state["stream"].get("seed")) is str:  # a fork's new seed, say: dumped from it again
            self.rng_seed = state["stream"]["seed"]
        for name in ("parent", "status", "detail", "actions", "refused", "failures", "total_failures",
                     "times_frozen", "frozen_since", "last_error", "paused", "crashed", "stopped", "held",
                     "wake_reason"):
            setattr(self, name, state[name])
        self.last_action = None if state["last_action"] is None else Described(state["last_action"])
        self._config_version = state["config_version"]
        self._stage = state["stage"]
        self._waiting = state["waiting"]
        self._predicate = predicate
        ledger = world.ledger
        if state["watch"] == "compute":
            ledger.compute_watchers[self.id] = self._on_compute
            self._watch = ledger.compute_watchers
        elif state["watch"] == "holdings":
            ledger.watchers[self.id] = self._on_holdings
            self._watch = ledger.watchers
        r = state["result"]
        self.view.last_result = None if r is None else Result(r[0], decode(r[1]), r[2], r[3], r[4])
        return state["requeue"]

    def due(self, t: float | None) -> Agent:
        """The scheduler's `load` puts this agent in its calendar at `t` (None: ready)."""
        if t is not None:
            self._timed = True
        return self

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


def _always(_view: Any) -> bool:
    return True


_TYPES: dict[str, tuple[type, ...]] = {
    "parent": (str,), "status": (str,), "detail": (str,), "actions": (int,), "refused": (int,),
    "failures": (int,), "total_failures": (int,), "times_frozen": (int,), "frozen_since": (float, int, type(None)),
    "last_error": (str,), "last_action": (str, type(None)), "paused": (bool,), "crashed": (bool,),
    "stopped": (bool,), "held": (bool,), "waiting": (bool,), "watch": (str, type(None)), "until": (list, type(None)),
    "stage": (int,), "requeue": (bool,), "wake_reason": (str,), "config_version": (int,),
    "config": (dict, type(None)), "result": (list, type(None)), "stream": (dict,), "brain": (dict,),
}


def _check_agent_state(state: Any) -> None:
    if not isinstance(state, dict):
        raise ValueError("an agent's state must be a table")
    for name, types in _TYPES.items():
        if name not in state:
            raise ValueError(f"an agent's state lacks {name}")
        if type(state[name]) not in types:
            raise ValueError(f"an agent's {name} must be a {' or '.join(t.__name__ for t in types)}")
    if state["status"] not in STATUSES or not FRESH <= state["stage"] <= SAVED:
        raise ValueError(f"an agent's status or stage is unknown: {state['status']!r}, {state['stage']!r}")
    if state["watch"] not in (None, "compute", "holdings"):
        raise ValueError(f"an agent's watch is unknown: {state['watch']!r}")
    r = state["result"]
    if r is not None and (len(r) != 5 or type(r[0]) is not bool):
        raise ValueError("an agent's last result must be [ok, value, error, code, arg]")


__all__ = ["Agent", "AgentView", "STATUSES", "Invoke"]
