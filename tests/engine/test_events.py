"""The event bus (issue 2, item 6): bounded mailboxes that drop the oldest and count it,
coalescing by key, and publishing that never waits for a reader."""

from __future__ import annotations

import inspect
import time

import anyio
import pytest

from ecotest import SCRIPTS, make_world, run_world
from engine.actions import Invoke, Sleep
from engine.clock import VirtualClock
from engine.scheduler import Scheduler
from engine.events import (
    EVENT_KINDS,
    ScripTransferred,
    SandboxStatsEvent,
    EventBus,
    WorldControl,
)
from engine.report import build_report


def pay(i: int, to: str = "b") -> ScripTransferred:
    return ScripTransferred(float(i), "a", to, i)


def test_full_subscriber_drops_the_oldest_and_counts_drops():
    bus = EventBus()
    sub = bus.subscribe(maxlen=3)
    for i in range(1, 6):
        bus.publish(pay(i))
    assert sub.pending() == 3
    assert sub.dropped == 2 and bus.dropped == 2
    batch = sub.drain()
    assert [e.amount for e in batch] == [3, 4, 5]  # the newest kept, in order
    assert [e.seq for e in batch] == [3, 4, 5]
    assert sub.delivered == 3 and sub.pending() == 0
    bus.publish(pay(6))
    assert [e.amount for e in sub.drain()] == [6] and sub.dropped == 2


def test_events_with_a_coalesce_key_replace_the_pending_one():
    bus = EventBus()
    sub = bus.subscribe(maxlen=100)
    bus.publish(SandboxStatsEvent(1.0, "a001", {"cpu": 1}))
    bus.publish(pay(1))
    bus.publish(SandboxStatsEvent(2.0, "a001", {"cpu": 2}))
    bus.publish(SandboxStatsEvent(2.0, "b001", {"cpu": 7}))
    bus.publish(SandboxStatsEvent(3.0, "a001", {"cpu": 3}))
    assert sub.pending() == 3 and sub.coalesced == 2 and sub.dropped == 0
    batch = sub.drain()
    stats = {e.agent_id: e.stats for e in batch if e.kind == "sandbox_stats"}
    assert stats == {"a001": {"cpu": 3}, "b001": {"cpu": 7}}
    assert [e.kind for e in batch].count("scrip_transferred") == 1
    assert bus.counts["sandbox_stats"] == 4  # every publish is counted, coalesced or not


def test_coalesced_events_do_not_take_room_from_the_others():
    bus = EventBus()
    sub = bus.subscribe(maxlen=2)
    for i in range(50):
        bus.publish(SandboxStatsEvent(float(i), "a001", i))
    bus.publish(pay(1))
    bus.publish(pay(2))
    assert sub.dropped == 0 and sub.pending() == 3


def test_subscription_by_kind_and_unsubscribe():
    bus = EventBus()
    pays = bus.subscribe(["scrip_transferred"])
    controls = bus.subscribe(["world_control"])
    bus.publish(pay(1))
    bus.publish(WorldControl(0.0, "paused"))
    assert [e.kind for e in pays.drain()] == ["scrip_transferred"]
    assert [e.kind for e in controls.drain()] == ["world_control"]
    pays.close()
    bus.publish(pay(2))
    assert pays.pending() == 0
    with pytest.raises(ValueError, match="unknown event kinds"):
        bus.subscribe(["no_such_kind"])
    assert "scrip_transferred" in EVENT_KINDS


def test_a_subscriber_that_never_reads_cannot_block_or_grow():
    assert not inspect.iscoroutinefunction(EventBus.publish)  # publishing never awaits
    bus = EventBus(recent=10)
    stalled = bus.subscribe(maxlen=10)
    n = 100_000
    for i in range(n):
        bus.publish(pay(i))
    assert stalled.pending() == 10  # bounded memory
    assert stalled.dropped == n - 10
    assert len(bus.recent) == 10
    assert bus.seq == n


def test_a_stalled_subscriber_adds_only_a_constant_cost_per_event():
    """Publishing with a backlog costs the same as without one: no growth with the backlog."""

    def cost(bus: EventBus, n: int) -> float:
        ev = pay(1)
        start = time.perf_counter()
        for _ in range(n):
            bus.publish(ev)
        return time.perf_counter() - start

    free = EventBus()
    stalled_bus = EventBus()
    stalled = stalled_bus.subscribe(maxlen=1000)
    n = 50_000
    cost(stalled_bus, n)  # fill the backlog
    baseline = min(cost(free, n) for _ in range(3))
    with_backlog = min(cost(stalled_bus, n) for _ in range(3))
    assert stalled.pending() == 1000 and stalled.dropped == 4 * n - 1000
    assert with_backlog < 4 * baseline + 0.25  # a generous bound; a blocking bus never returns


@pytest.mark.anyio
async def test_stalled_subscriber_does_not_change_a_running_world():
    """The same world, with and without a subscriber that never reads: same outcome."""

    def run_config():
        world = make_world([{"count": 4}], clock=VirtualClock())
        for a in world.agents:
            SCRIPTS[a] = lambda view, brain: (
                Invoke("ledger", "transfer", {"to": view.random_other(), "amount": 1}) if view.scrip else Sleep(seconds=1.0)
            ) if view.rng.random() < 0.5 else Sleep(seconds=0.5)
        return world

    plain = run_config()
    await run_world(plain, 30.0)
    stalled_world = run_config()
    stalled = stalled_world.bus.subscribe(maxlen=1)
    await run_world(stalled_world, 30.0)
    assert stalled.dropped > 0
    a, b = build_report(plain), build_report(stalled_world)
    assert a == b
    assert a["totals"]["actions"] > 100


@pytest.mark.anyio
async def test_next_batch_waits_for_an_event_and_takes_all_pending():
    bus = EventBus()
    sub = bus.subscribe()
    got: list[list[int]] = []

    async def reader() -> None:
        got.append([e.amount for e in await sub.next_batch()])

    async with anyio.create_task_group() as tg:
        tg.start_soon(reader)
        await anyio.wait_all_tasks_blocked()
        assert got == []
        bus.publish(pay(1))
        bus.publish(pay(2))
    assert got == [[1, 2]]


def test_wake_on_targets_the_principal_or_anyone():
    sched = Scheduler(VirtualClock())
    bus = EventBus()
    mine, anyones, other_kind = sched.waiter(), sched.waiter(), sched.waiter()
    bus.wake_on(["scrip_transferred"], "b", mine)
    bus.wake_on(["scrip_transferred"], None, anyones)
    bus.wake_on(["compute_transferred"], "b", other_kind)
    bus.publish(pay(1, to="c"))
    assert (mine.woken, anyones.woken, other_kind.woken) == (False, True, False)
    assert anyones.reason == "event:scrip_transferred"
    bus.publish(pay(2, to="b"))
    assert mine.woken and not other_kind.woken
    with pytest.raises(ValueError):
        bus.wake_on(["nope"], None, sched.waiter())


def test_published_event_has_a_seq_and_a_dict_form():
    bus = EventBus()
    bus.publish(pay(1))
    ev = pay(3)
    bus.publish(ev)
    assert ev.seq == 2 and bus.counts["scrip_transferred"] == 2
    assert ev.to_dict() == {"kind": "scrip_transferred", "t": 3.0, "seq": 2, "frm": "a", "to": "b", "amount": 3}
