"""Typed events and the bus that carries them.

Publishing never waits: each subscriber has a bounded buffer that drops its oldest event
when full (and counts the drop), and events with a `coalesce_key` replace the pending one
with the same key, so a slow reader (the UI, an exporter) never slows the engine.
The bus also wakes agents sleeping until an event kind (optionally only events that
concern them), which is how "sleep until a transfer is received" works without polling.

`emit(cls, t, fields)` is `publish` for the engine's hottest events (a transfer, a
freeze): when nobody listens to that kind (no subscriber, hook or sleeper), the event is
counted and kept in the recent ring as its fields, and built only if someone reads the ring.
When only subscribers listen (the app, to a freeze: one per action in a busy world), each
gets the fields too, built when it drains: most are dropped unread by a bounded mailbox
the app drains ten times a second, and building each had cost the engine 12-17% of its
actions/s beside the app.
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass, field, fields
from typing import Any, Callable, ClassVar, Iterable

import anyio


@dataclass(slots=True)
class Event:
    """Base of every event. `seq` is set by the bus; `t` is world time."""

    kind: ClassVar[str] = "event"
    # The field naming the principal an event concerns, for targeted sleeps.
    target: ClassVar[str | None] = None
    t: float
    seq: int = field(init=False)  # set by the bus when published

    # True for a kind whose events replace a pending one (`coalesce_key`): those are built
    # as they are published, so the key can be read.
    coalesces: ClassVar[bool] = False

    @property
    def coalesce_key(self) -> Any:
        return None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind}
        for f in fields(self):
            d[f.name] = getattr(self, f.name, None)  # seq is unset until published
        return d


def _event(kind: str, target: str | None = None):
    """Register an event class under a kind name."""

    def register(cls):
        cls.kind = kind
        cls.target = target
        EVENT_KINDS[kind] = cls
        return cls

    return register


EVENT_KINDS: dict[str, type[Event]] = {}


@_event("scrip_transferred", target="to")
@dataclass(slots=True)
class ScripTransferred(Event):
    frm: str
    to: str
    amount: int


@_event("compute_transferred", target="to")
@dataclass(slots=True)
class ComputeTransferred(Event):
    frm: str
    to: str
    amount: float
    credited: float  # clamped at the receiver's capacity; the rest stayed with the sender


@_event("rate_transferred", target="to")
@dataclass(slots=True)
class RateTransferred(Event):
    frm: str
    to: str
    amount: float


@_event("rate_changed", target="agent_id")
@dataclass(slots=True)
class BucketChanged(Event):
    agent_id: str
    rate: float
    capacity: float


@_event("agent_spawned", target="agent_id")
@dataclass(slots=True)
class AgentSpawned(Event):
    agent_id: str
    parent: str
    brain: str
    scrip: int
    rate: float


@_event("agent_status", target="agent_id")
@dataclass(slots=True)
class AgentStatusChanged(Event):
    agent_id: str
    status: str
    detail: str = ""


@_event("artifact_written", target="owner")
@dataclass(slots=True)
class ArtifactWritten(Event):
    artifact_id: str
    owner: str
    artifact_kind: str
    size: int
    created: bool


@_event("artifact_deleted", target="owner")
@dataclass(slots=True)
class ArtifactDeleted(Event):
    artifact_id: str
    owner: str


@_event("artifact_transferred", target="to")
@dataclass(slots=True)
class ArtifactTransferred(Event):
    artifact_id: str
    frm: str
    to: str


@_event("config_changed", target="agent_id")
@dataclass(slots=True)
class ConfigChanged(Event):
    agent_id: str
    by: str
    changes: dict[str, Any]


@_event("action_refused", target="principal")
@dataclass(slots=True)
class ActionRefused(Event):
    principal: str
    action: str
    reason: str


@_event("brain_failed", target="agent_id")
@dataclass(slots=True)
class BrainFailed(Event):
    agent_id: str
    error: str
    failures: int


@_event("world_control")
@dataclass(slots=True)
class WorldControl(Event):
    what: str  # "paused" | "resumed" | "speed"
    detail: str = ""


@_event("window_closed")
@dataclass(slots=True)
class WindowClosed(Event):
    window: dict[str, Any]


@_event("sandbox_stats", target="agent_id")
@dataclass(slots=True)
class SandboxStatsEvent(Event):
    agent_id: str
    stats: Any

    coalesces: ClassVar[bool] = True

    @property
    def coalesce_key(self) -> Any:
        return ("sandbox_stats", self.agent_id)


@_event("sandbox_incident", target="agent_id")
@dataclass(slots=True)
class SandboxIncidentEvent(Event):
    agent_id: str
    failure: str
    detail: str


@_event("bid_placed", target="bidder")
@dataclass(slots=True)
class BidPlaced(Event):
    bidder: str
    artifact_id: str
    amount: int
    replaced: int | None  # the amount of the bid it replaced


@_event("bid_cancelled", target="bidder")
@dataclass(slots=True)
class BidCancelled(Event):
    bidder: str
    artifact_id: str
    amount: int
    reason: str


@_event("oracle_resolved")
@dataclass(slots=True)
class OracleResolved(Event):
    index: int
    winners: list[str]  # winning artifact ids
    price: int
    minted: int
    ubi: int


@_event("scrip_minted", target="to")
@dataclass(slots=True)
class ScripMinted(Event):
    to: str
    amount: int
    artifact_id: str
    score: int


@_event("listing_created", target="seller")
@dataclass(slots=True)
class ListingCreated(Event):
    listing_id: str
    seller: str
    artifact_id: str
    artifact_kind: str
    price: int
    buyer: str | None


@_event("listing_sold", target="seller")
@dataclass(slots=True)
class ListingSold(Event):
    listing_id: str
    seller: str
    buyer: str
    artifact_id: str
    artifact_kind: str
    price: int


@_event("listing_cancelled", target="seller")
@dataclass(slots=True)
class ListingCancelled(Event):
    listing_id: str
    seller: str
    artifact_id: str


@_event("rate_sliced", target="owner")
@dataclass(slots=True)
class RateSliced(Event):
    owner: str
    artifact_id: str
    amount: float
    how: str  # "sliced" | "split" | "dissolved"


@_event("loan", target="debtor")
@dataclass(slots=True)
class LoanEvent(Event):
    """Every step of a debt contract: offered, accepted, declined, cancelled, repayment,
    collected, repaid, defaulted."""

    contract_id: str
    what: str
    lender: str
    debtor: str
    holder: str
    amount: int
    status: str


@_event("engine_error", target="principal")
@dataclass(slots=True)
class EngineError(Event):
    """A genesis method raised: a bug in the engine, not the caller's fault. The call's
    changes were put back (`undone` of them) and the caller was refused; `broken` names any
    invariant false afterwards (empty when all hold)."""

    principal: str
    method: str  # "target.method"
    args: str  # the arguments as given, clipped
    error: str  # "TypeError: ..."
    undone: int
    broken: list[str] = field(default_factory=list)


class Subscription:
    """A bounded, coalescing mailbox of events for one reader."""

    def __init__(self, bus: EventBus, kinds: frozenset[str] | None, maxlen: int) -> None:
        self._bus = bus
        self.kinds = kinds
        self.maxlen = maxlen
        # Events, or an emitted event as its (class, seq, t, fields) until drained
        # (`EventBus.emit`). Full, the deque drops its oldest itself: the bus hands it events
        # with one C call, and the drops are counted from the bus's counts (`dropped`).
        self._queue: deque[Any] = deque(maxlen=maxlen)
        self._latest: dict[Any, Event] = {}  # coalesced events, newest per key
        self._ready: anyio.Event | None = None  # set by an event while `next_batch` waits
        self.coalesced = 0
        self.delivered = 0
        self._before = bus.published(kinds)  # events of its kinds published before it

    @property
    def offered(self) -> int:
        """Events of its kinds published since it subscribed."""
        return self._bus.published(self.kinds) - self._before

    @property
    def dropped(self) -> int:
        """Events pushed out unread by newer ones (its buffer was full)."""
        return self.offered - self.delivered - self.pending() - self.coalesced

    def _offer(self, ev: Event) -> None:
        key = ev.coalesce_key
        if key is not None:
            if key in self._latest:
                self.coalesced += 1
            self._latest[key] = ev
        else:
            self._queue.append(ev)
        if self._ready is not None:
            self._ready.set()

    def pending(self) -> int:
        return len(self._queue) + len(self._latest)

    def drain(self) -> list[Event]:
        """Take everything pending now, without waiting."""
        batch = [_build(e) if e.__class__ is tuple else e for e in self._queue]
        self._queue.clear()
        if self._latest:
            batch.extend(self._latest.values())
            self._latest.clear()
        self.delivered += len(batch)
        return batch

    async def next_batch(self) -> list[Event]:
        """Wait for at least one event and take everything pending."""
        while not self.pending():
            # While it waits, its kinds' events are built and offered one by one, so that
            # the first can wake it (see `EventBus._refan`).
            self._ready = anyio.Event()
            self._bus._refan()
            try:
                await self._ready.wait()
            finally:
                self._ready = None
                self._bus._refan()
        return self.drain()

    def close(self) -> None:
        self._bus.unsubscribe(self)


def _build(entry: tuple[type[Event], int, float, tuple[Any, ...]]) -> Event:
    cls, seq, t, fields = entry
    ev = cls(t, *fields)
    ev.seq = seq
    return ev


class _Waiting(list):
    """The waiters of one (kind, principal), in registration order. Pruned of those woken
    otherwise when it has doubled since the last pruning: hundreds of agents can sleep
    until one rare event, and pruning at a fixed length rescanned them at every sleep."""

    __slots__ = ("prune_at",)

    def __init__(self) -> None:
        super().__init__()
        self.prune_at = 8

    def prune(self) -> None:
        self[:] = [w for w in self if not w.woken]
        self.prune_at = max(8, 2 * len(self))


class EventBus:
    """Publishes events to subscribers and to agents sleeping until an event kind."""

    def __init__(self, recent: int = 2000) -> None:
        self.seq = 0
        # The last events, newest last. Entries emitted while nobody listened are kept as
        # (class, seq, fields) until `recent` is read.
        self._recent: deque[Any] = deque(maxlen=recent)
        self._unbuilt = False
        # defaultdict: kinds registered after the bus was made (later modules) count too
        self.counts: defaultdict[str, int] = defaultdict(int, dict.fromkeys(EVENT_KINDS, 0))
        self._all: list[Subscription] = []
        self._by_kind: dict[str, list[Subscription]] = {}
        # kind -> principal (or None for "any") -> waiters to wake (engine.scheduler.Waiter, or an agent's ticket)
        self._wakers: dict[str, dict[str | None, _Waiting]] = {}
        self._hooks: list[Callable[[Event], None]] = []
        self._fanout: dict[str, tuple[tuple, tuple]] = {}
        # Kinds (among `_fanout`'s) whose only listeners are subscribers, none of them
        # waiting, and whose events do not coalesce: `emit` appends the event unbuilt to
        # those subscribers' queues (their `append`s).
        self._unbuilt_fanout: dict[str, tuple[Callable[[Any], None], ...]] = {}
        # Events of a genesis call, until it stands (hold/release/drop). Public because the
        # narrow waist inlines hold and release on its hot path (engine/waist.py).
        self.holding: list[Any] | None = None

    def hold(self) -> list[Any]:
        """Keep events back (while a genesis call runs) until `release` or `drop`."""
        held: list[Any] = []
        self.holding = held
        return held

    def release(self, held: list[Any]) -> None:
        """Publish the events kept back: the call they describe stands. (An `emit` is kept
        as its (class, t, fields), to be emitted, and so built, only now.)"""
        self.holding = None
        for ev in held:
            if ev.__class__ is tuple:
                self.emit(ev[0], ev[1], ev[2])
            else:
                self.publish(ev)

    def drop(self) -> None:
        """Forget the events kept back: the call they describe was undone."""
        self.holding = None

    @property
    def recent(self) -> deque[Event]:
        """The last events published, oldest first."""
        if self._unbuilt:
            ring = self._recent
            built = [_build(e) if e.__class__ is tuple else e for e in ring]
            ring.clear()
            ring.extend(built)
            self._unbuilt = False
        return self._recent

    def emit(self, cls: type[Event], t: float, fields: tuple[Any, ...]) -> None:
        """Publish `cls(t, *fields)`, built only when someone will read it (module doc).
        (A tuple, not *fields: a call without star-arguments is a cheaper call.)"""
        held = self.holding
        if held is not None:
            held.append((cls, t, fields))
            return
        kind = cls.kind
        subs = None
        if kind in self._fanout:
            subs = self._unbuilt_fanout.get(kind)
            if subs is None:  # a hook or a sleeper listens: it gets the event itself
                self.publish(cls(t, *fields))
                return
        self.seq = seq = self.seq + 1
        entry = (cls, seq, t, fields)
        self._recent.append(entry)
        self._unbuilt = True
        self.counts[kind] += 1
        if subs is not None:
            for append in subs:
                append(entry)

    def publish(self, ev: Event) -> None:
        held = self.holding
        if held is not None:
            held.append(ev)
            return
        self.seq += 1
        ev.seq = self.seq
        self._recent.append(ev)
        kind = ev.kind
        self.counts[kind] += 1
        fanout = self._fanout.get(kind)
        if fanout is not None:  # hooks, subscribers and sleepers, when there are any
            hooks, subs = fanout
            for hook in hooks:
                hook(ev)
            for sub in subs:
                sub._offer(ev)
            wakers = self._wakers.get(kind)
            if wakers:
                self._wake(wakers, ev)

    def _refan(self) -> None:
        """Recompute which kinds have anyone listening (on every (un)subscribe)."""
        self._fanout = {}
        self._unbuilt_fanout = {}
        for kind, cls in EVENT_KINDS.items():
            subs = tuple(self._all) + tuple(self._by_kind.get(kind, ()))
            if self._hooks or subs or kind in self._wakers:
                self._fanout[kind] = (tuple(self._hooks), subs)
                if not (self._hooks or kind in self._wakers or cls.coalesces
                        or any(sub._ready is not None for sub in subs)):
                    self._unbuilt_fanout[kind] = tuple(sub._queue.append for sub in subs)

    def _wake(self, wakers: dict[str | None, _Waiting], ev: Event) -> None:
        woken: list[Any] = wakers.pop(None, [])
        if ev.target is not None:
            woken += wakers.pop(getattr(ev, ev.target), [])
        reason = "event:" + ev.kind
        for waiter in woken:
            waiter.wake(reason)

    def subscribe(self, kinds: Iterable[str] | None = None, maxlen: int = 10_000) -> Subscription:
        kind_set = None if kinds is None else frozenset(kinds)
        if kind_set is not None:
            unknown = kind_set - EVENT_KINDS.keys()
            if unknown:
                raise ValueError(f"unknown event kinds: {sorted(unknown)}")
        sub = Subscription(self, kind_set, maxlen)
        if kind_set is None:
            self._all.append(sub)
        else:
            for k in kind_set:
                self._by_kind.setdefault(k, []).append(sub)
        self._refan()
        return sub

    def published(self, kinds: frozenset[str] | None = None) -> int:
        """How many events of `kinds` (all when None) were published."""
        counts = self.counts
        return sum(counts.values()) if kinds is None else sum(counts[k] for k in kinds)

    def _subscriptions(self) -> set[Subscription]:
        subs = set(self._all)
        for lst in self._by_kind.values():
            subs.update(lst)
        return subs

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self._all:
            self._all.remove(sub)
        for subs in self._by_kind.values():
            if sub in subs:
                subs.remove(sub)
        self._refan()

    def add_hook(self, hook: Callable[[Event], None]) -> None:
        """A synchronous hook called for every event (engine-internal, must be cheap)."""
        self._hooks.append(hook)
        self._refan()

    def wake_on(self, kinds: Iterable[str], principal: str | None, waiter: Any) -> None:
        """Wake `waiter` at the next event of one of `kinds` concerning `principal` (any
        principal when None). A woken waiter ignores further wakes, so registrations left
        under the other kinds are harmless; they are pruned as they accumulate."""
        for kind in kinds:
            if kind not in EVENT_KINDS:
                raise ValueError(f"unknown event kind {kind!r}")
            by_principal = self._wakers.get(kind)
            if by_principal is None:
                by_principal = self._wakers[kind] = {}
                self._refan()
            waiting = by_principal.get(principal)
            if waiting is None:
                waiting = by_principal[principal] = _Waiting()
            elif len(waiting) >= waiting.prune_at:
                waiting.prune()
            waiting.append(waiter)

    # -- a checkpoint's view of the bus -------------------------------------------------------------
    def dump(self, name_of: Callable[[Any], str | None]) -> dict[str, Any]:
        """Its count of events, per kind too, and who sleeps until which event: per kind and
        principal (None: any), the waiters still waiting in registration order, as names
        (`name_of`; None leaves one out). The recent ring is the UI's, not kept."""
        wakers = []
        for kind, by_principal in self._wakers.items():
            for principal, waiting in by_principal.items():
                names = [n for w in waiting if not w.woken and (n := name_of(w)) is not None]
                if names:
                    wakers.append([kind, principal, names])
        # Sorted: which kind or principal registered first is not state (only the order
        # within one list is: it is the order of wakes).
        wakers.sort(key=lambda w: (w[0], w[1] or ""))
        return {"seq": self.seq, "counts": dict(self.counts), "wakers": wakers}

    def load(self, state: dict[str, Any], resolve: Callable[[str], Any]) -> None:
        """Take back the counts and the sleepers (`resolve(name)` gives a fresh waiter)."""
        counts, wakers = state["counts"], state["wakers"]
        if type(state["seq"]) is not int or not isinstance(counts, dict) or not all(
                type(v) is int for v in counts.values()):
            raise ValueError("the event bus's counts must be whole numbers")
        if not isinstance(wakers, list) or not all(
                isinstance(w, list) and len(w) == 3 and w[0] in EVENT_KINDS and (w[1] is None or type(w[1]) is str)
                and isinstance(w[2], list) for w in wakers):
            raise ValueError("the event bus's sleepers must be [kind, principal, names] rows")
        subs = self._subscriptions()
        offered = {sub: sub.offered for sub in subs}
        self.seq = state["seq"]
        self.counts.clear()
        self.counts.update(counts)
        for sub in subs:  # a subscriber's count of what it was offered goes on from here
            sub._before = sub._bus.published(sub.kinds) - offered[sub]
        for kind, principal, names in wakers:
            for name in names:
                self.wake_on((kind,), principal, resolve(name))

    @property
    def dropped(self) -> int:
        return sum(s.dropped for s in self._subscriptions())
