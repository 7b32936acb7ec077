"""The discrete-event scheduler (engine/scheduler.py): order, timers, async waiters, virtual
jumps, pausing, real-time sleeping, and bursts that leave the event loop to others."""

from __future__ import annotations

import random

import anyio
import pytest

from engine.clock import RealClock, VirtualClock
from engine.scheduler import Scheduler


class FakeMonotonic:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class Ticker:
    """A minimal scheduled item, as an agent is one: `turn(now)` and `_due(token, now)`."""

    def __init__(self, sched: Scheduler, name: str, log: list, every: float | None = None, times: int = 1) -> None:
        self.sched, self.name, self.log, self.every, self.left = sched, name, log, every, times
        self._token = 0

    def turn(self, now: float) -> None:
        self.log.append((self.name, now))
        self.left -= 1
        if self.left > 0:
            if self.every is None:
                self.sched.ready(self)
            else:
                self._token += 1
                self.sched.at(now + self.every, self, self._token)

    def _due(self, token: int, now: float) -> bool:
        if token != self._token:
            return False
        self.turn(now)
        return True


def test_timers_fire_in_due_order_and_ties_in_the_order_scheduled():
    sched = Scheduler(VirtualClock())
    fired: list[tuple[str, float]] = []
    for name, due in (("c", 3.0), ("a", 1.0), ("b", 3.0), ("d", 5.0)):
        sched.call_at(due, lambda now, name=name: fired.append((name, now)))
    assert sched.next_deadline() == 1.0
    sched.advance(3.0)
    assert fired == [("a", 3.0), ("c", 3.0), ("b", 3.0)]  # all due by 3; c before b: scheduled first
    assert sched.next_deadline() == 5.0 and sched.pending_timers == 1


def test_a_rescheduled_or_cancelled_timer_fires_once_at_its_new_time_or_never():
    sched = Scheduler(VirtualClock())
    fired: list[float] = []
    t = sched.call_at(2.0, fired.append)
    t.reschedule(4.0)
    gone = sched.call_at(3.0, fired.append)
    gone.cancel()
    sched.advance(10.0)
    assert fired == [10.0]
    assert sched.pending_timers == 0 and sched.next_deadline() is None


def test_entries_woken_early_do_not_pile_up_in_the_calendar():
    # Items that sleep long and are woken early leave stale heap entries; the scheduler
    # drops them all once they are most of the heap, and keeps the live ones in order.
    sched = Scheduler(VirtualClock())
    fired: list[int] = []
    live = [sched.call_at(1000.0 + i, lambda now, i=i: fired.append(i)) for i in range(10)]
    for i in range(10_000):
        sched.call_at(500.0 + i % 300, fired.append).cancel()
    assert sched._entries < 600, sched._entries
    assert sched.pending_timers == 10
    sched.advance(1004.5)
    assert fired == [0, 1, 2, 3, 4]
    assert sched.next_deadline() == 1005.0 and sched._stale == 0
    assert all(t.due is None for t in live[:5]) and all(t.due is not None for t in live[5:])


def test_waiter_is_woken_at_most_once():
    sched = Scheduler(VirtualClock())
    w = sched.waiter(10.0)
    w.wake("rescue")
    w.wake("deadline")
    assert w.woken and w.reason == "rescue"


def test_ready_items_run_first_in_fifo_order_then_due_entries():
    sched = Scheduler(VirtualClock())
    log: list = []
    a, b = Ticker(sched, "a", log, times=3), Ticker(sched, "b", log, times=2)
    c = Ticker(sched, "c", log, every=1.0, times=3)
    sched.at(0.0, c, 0)
    sched.ready(a)
    sched.ready(b)
    sched.advance(0.0)
    # a and b take turns through the FIFO at t=0; c's entry fell due at 0 as well.
    assert log == [("a", 0.0), ("b", 0.0), ("a", 0.0), ("b", 0.0), ("a", 0.0), ("c", 0.0)]
    sched.advance(1.0)
    assert log[-1] == ("c", 1.0)


@pytest.mark.anyio
async def test_virtual_time_jumps_to_the_next_due_entry_only_when_no_task_can_run():
    sched = Scheduler(VirtualClock())
    clock = sched.clock
    seen: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        try:
            await sched.sleep(seconds)
            seen.append((name, clock.now()))
        finally:
            sched.task_finished()

    async def busy() -> None:
        # Runnable for many event-loop turns: time must not move under it.
        try:
            for _ in range(200):
                await anyio.lowlevel.checkpoint()
            seen.append(("busy", clock.now()))
            await sched.sleep(1.0)
            seen.append(("busy-woke", clock.now()))
        finally:
            sched.task_finished()

    async with anyio.create_task_group() as tg:
        tg.start_soon(sched.run)
        for name, s in (("five", 5.0), ("three", 3.0)):
            sched.task_started()
            tg.start_soon(sleeper, name, s)
        sched.task_started()
        tg.start_soon(busy)
        with anyio.fail_after(10):  # a safety net only; virtual time needs no real wait
            while len(seen) < 4:
                await anyio.lowlevel.checkpoint()
        tg.cancel_scope.cancel()
    assert seen == [("busy", 0.0), ("busy-woke", 1.0), ("three", 3.0), ("five", 5.0)]
    assert clock.now() == 5.0
    assert sched.jumps == 3


class Thinker:
    """An item whose first turn starts async work (an LLM call) and whose second records
    what came back."""

    _token = 0

    def __init__(self, sched: Scheduler, name: str, log: list, gate: anyio.Event) -> None:
        self.sched, self.name, self.log, self.gate = sched, name, log, gate
        self.answer = None

    def turn(self, now: float) -> None:
        if self.answer is None:
            self.log.append((self.name, "asks", now))
            self.sched.spawn(self, self.think(), self.landed)
        else:
            self.log.append((self.name, self.answer, now))

    async def think(self) -> str:
        await self.gate.wait()  # not a wait on world time
        return "answer"

    def landed(self, outcome) -> None:
        self.answer = outcome


@pytest.mark.anyio
async def test_async_work_in_flight_holds_virtual_time_and_its_item_comes_back_through_the_queue():
    sched = Scheduler(VirtualClock())
    log: list = []
    gate = anyio.Event()
    sched.at(7.0, Ticker(sched, "later", log), 0)
    async with anyio.create_task_group() as tg:
        tg.start_soon(sched.run)
        sched.ready(Thinker(sched, "thinker", log, gate))
        for _ in range(10):
            await anyio.wait_all_tasks_blocked()
        assert log == [("thinker", "asks", 0.0)] and sched.clock.now() == 0.0  # no jump while it thinks
        gate.set()
        with anyio.fail_after(10):
            while len(log) < 3:
                await anyio.lowlevel.checkpoint()
        tg.cancel_scope.cancel()
    assert log == [("thinker", "asks", 0.0), ("thinker", "answer", 0.0), ("later", 7.0)]


@pytest.mark.anyio
async def test_under_virtual_time_async_work_lands_in_the_order_it_started_not_the_order_it_ended():
    sched = Scheduler(VirtualClock())
    log: list = []
    gates = {name: anyio.Event() for name in ("first", "second")}
    async with anyio.create_task_group() as tg:
        tg.start_soon(sched.run)
        for name in ("first", "second"):
            sched.ready(Thinker(sched, name, log, gates[name]))
        for _ in range(10):
            await anyio.wait_all_tasks_blocked()
        gates["second"].set()  # the second call comes back first, in wall time
        for _ in range(10):
            await anyio.wait_all_tasks_blocked()
        assert [e[1] for e in log] == ["asks", "asks"]  # held while the first is in flight
        gates["first"].set()
        with anyio.fail_after(10):
            while len(log) < 4:
                await anyio.lowlevel.checkpoint()
        tg.cancel_scope.cancel()
    assert log[2:] == [("first", "answer", 0.0), ("second", "answer", 0.0)]


@pytest.mark.anyio
async def test_virtual_time_stands_still_while_paused():
    sched = Scheduler(VirtualClock())
    clock = sched.clock
    log: list = []
    sched.at(2.0, Ticker(sched, "t", log), 0)
    async with anyio.create_task_group() as tg:
        tg.start_soon(sched.run)
        clock.pause()
        for _ in range(5):
            await anyio.wait_all_tasks_blocked()
        assert log == [] and clock.now() == 0.0
        clock.resume()
        with anyio.fail_after(10):
            while not log:
                await anyio.lowlevel.checkpoint()
        tg.cancel_scope.cancel()
    assert log == [("t", 2.0)]


@pytest.mark.anyio
async def test_real_clock_driver_runs_entries_at_their_deadline():
    mono = FakeMonotonic()
    sched = Scheduler(RealClock(monotonic=mono))
    fired: list[float] = []
    sched.call_at(5.0, fired.append)
    async with anyio.create_task_group() as tg:
        tg.start_soon(sched.run)
        await anyio.wait_all_tasks_blocked()
        mono.t += 4.0
        sched.clock.set_speed(1.0)  # re-plans the driver, which reads the (fake) machine time
        await anyio.wait_all_tasks_blocked()
        assert fired == []
        mono.t += 1.5
        sched.clock.set_speed(1.0)
        await anyio.wait_all_tasks_blocked()
        assert fired == [5.5]
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_a_burst_of_always_runnable_items_leaves_the_event_loop_to_others():
    """Items that never wait must not starve other tasks: the driver gives the event loop a
    turn after every burst (bounded by wall time), so another task runs between any two."""
    sched = Scheduler(VirtualClock())
    log: list = []
    for i in range(100):
        sched.ready(Ticker(sched, f"s{i}", log, times=10**9))
    seen: list[tuple[int, int]] = []  # (bursts so far, turns so far) each time the other task runs

    async def other_task() -> None:
        for _ in range(20):
            await anyio.lowlevel.checkpoint()
            seen.append((sched.bursts, len(log)))

    async with anyio.create_task_group() as tg:
        tg.start_soon(sched.run)
        await other_task()
        tg.cancel_scope.cancel()
    bursts = [b for b, _ in seen]
    turns = [n for _, n in seen]
    assert all(0 <= b2 - b1 <= 1 for b1, b2 in zip(bursts, bursts[1:])), bursts
    assert turns[-1] > turns[0]  # the always-runnable items ran in between


class RefScheduler:
    """The reference: a plain list, searched for the earliest live entry every time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.entries: list[tuple[float, int, object, int]] = []
        self.order = 0

    def at(self, due: float, item, token: int) -> None:
        self.order += 1
        self.entries.append((due, self.order, item, token))

    def stale(self) -> None:
        pass

    def advance(self, seconds: float) -> None:
        self.now += seconds
        while True:
            live = [e for e in self.entries if e[2]._token == e[3] and e[0] <= self.now]
            self.entries = [e for e in self.entries if e[2]._token == e[3]]
            if not live:
                return
            entry = min(live, key=lambda e: (e[0], e[1]))
            self.entries.remove(entry)
            entry[2].turn(self.now)


class Sleeper:
    """An item that, each time it runs, plays the next of a shared script of operations:
    re-time itself, or wake (cancel) another item early, as agents do to each other."""

    def __init__(self, sched, name: int, log: list, script: list, items: list) -> None:
        self.sched, self.name, self.log, self.script, self.items = sched, name, log, script, items
        self._token = 0
        self.timed = False

    def sleep_until(self, due: float) -> None:
        self._token += 1
        if self.timed:
            self.sched.stale()  # its previous entry
        self.timed = True
        self.sched.at(due, self, self._token)

    def cancel(self) -> None:
        self._token += 1
        if self.timed:
            self.timed = False
            self.sched.stale()

    def turn(self, now: float) -> None:
        self.timed = False
        self.log.append((self.name, now))
        if self.script:
            other, delay, cancel = self.script.pop()
            if cancel:
                self.items[other].cancel()
            else:
                self.items[other].sleep_until(now + delay)


def play(sched, ops: list, script: list) -> list:
    log: list = []
    items: list = []
    items.extend(Sleeper(sched, i, log, script, items) for i in range(6))
    for i, due, cancel in ops:
        if cancel:
            items[i].cancel()
        else:
            items[i].sleep_until(float(due))
    for _ in range(60):
        sched.advance(1.0)
    return log


@pytest.mark.parametrize("seed", range(300))
def test_calendar_runs_what_a_reference_scheduler_runs(seed):
    """Against a reference that searches a plain list: items scheduled, re-timed and woken
    early, before the run and by each other while it runs (with stale entries compacted
    often, mid-run too), run at the same times in the same order."""
    rng = random.Random(seed)

    def ops(n: int) -> list:
        return [(rng.randrange(6), rng.randrange(21), rng.random() < 0.3) for _ in range(n)]

    setup, script = ops(rng.randrange(1, 100)), ops(rng.randrange(50, 300))
    sched = Scheduler(VirtualClock())
    sched.compact_after = 4
    got = play(sched, setup, list(script))
    assert got == play(RefScheduler(), setup, list(script))
