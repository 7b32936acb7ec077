"""The discrete-event scheduler (engine/scheduler.py): order, timers, async waiters, virtual
jumps, pausing, real-time sleeping, and bursts that leave the event loop to others."""

from __future__ import annotations

import time

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


@pytest.mark.anyio
async def test_async_work_in_flight_holds_virtual_time_and_its_item_comes_back_through_the_queue():
    sched = Scheduler(VirtualClock())
    log: list = []
    gate = anyio.Event()
    later = Ticker(sched, "later", log)
    sched.at(7.0, later, 0)

    class Thinker:
        _token = 0

        def turn(self, now: float) -> None:
            log.append(("thinker", now))
            if len(log) == 1:
                sched.spawn(self.think)

        async def think(self) -> None:
            await gate.wait()  # an LLM call: not a wait on world time
            sched.ready(self)

    async with anyio.create_task_group() as tg:
        tg.start_soon(sched.run)
        sched.ready(Thinker())
        for _ in range(10):
            await anyio.wait_all_tasks_blocked()
        assert log == [("thinker", 0.0)] and sched.clock.now() == 0.0  # no jump to 7 while it thinks
        gate.set()
        with anyio.fail_after(10):
            while len(log) < 3:
                await anyio.lowlevel.checkpoint()
        tg.cancel_scope.cancel()
    assert log == [("thinker", 0.0), ("thinker", 0.0), ("later", 7.0)]


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
