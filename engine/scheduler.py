"""The discrete-event scheduler: every agent turn and every timed piece of engine work.

A calendar of due entries and one FIFO of agents ready now, in the manner of SimPy's
environment, but with plain calls instead of generators and events. The calendar is a heap
of distinct due times, each with a FIFO of `(item, token)` entries: agents that pay the same
costs thaw at the same instants, so most pushes and pops are a list append and a popleft,
not a heap operation, and entries due at one time run in the order they were scheduled.

* An **agent** is an item whose turn is a synchronous call (`Agent.turn(now)`). The turn
  runs until the agent must wait, and registers that wait itself: an entry in this heap (a
  thaw, a sleep's deadline, a back-off), a ticket in the event bus's wake table, a watcher
  in the ledger, or nothing (held). A wake from any of those invalidates the others (the
  agent's token moves on) and puts the agent on the ready FIFO. Waiting creates no future,
  task or event object.
* A **timer** is a synchronous callback at a world time (`call_at`): the oracle's
  resolutions, contract collection, metrics windows, the end of a run.
* A **waiter** is an async task's wait on world time (`sleep`, `sleep_until`, `waiter`):
  for tests and for engine work that must await (an LLM call, a sandbox round trip).

Async work an agent starts (`spawn`) counts as runnable until it ends; under virtual time
the clock does not move while any is in flight, and the agent is woken into the FIFO when
it ends. Under virtual time the scheduler jumps straight to the next due entry without a
trip through the event loop; under real time it sleeps until then. Either way it runs in
bursts bounded by wall time and yields the event loop between bursts, so a keypress never
waits behind a round of the world. Equal due times run in the order they were scheduled,
so a seeded world on virtual time is reproducible.

This is hand-written because it is the engine's hot path: no library schedules plain
callbacks on an injected virtual clock with debt-exact thaws at a few microseconds each.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import time
from collections import deque
from typing import Any, Awaitable, Callable, Protocol

import anyio

from .clock import Clock

# Wall seconds a burst of turns may take before the event loop gets a turn (the UI, journal
# commits, sandboxes' replies). Short enough for a keypress to feel instant, long enough that
# the trip through the loop is a rounding error.
BURST_SECONDS = 0.004
# Items run between two looks at the wall clock (and, on a real clock, at world time).
CHECK_EVERY = 64


class Due(Protocol):
    """What the calendar holds. An entry `(item, token)` is live while
    `item._token == token` (a wake or a re-timing moves the token on, which makes every
    older entry stale at once); a live entry runs `item.turn(now)`."""

    _token: int

    def turn(self, now: float) -> None: ...


class Timer:
    """A synchronous callback at a world time; `cancel()` and `reschedule()` are O(1)
    (the old heap entry goes stale)."""

    __slots__ = ("_sched", "_fn", "_token", "due", "first")

    def __init__(self, sched: Scheduler, fn: Callable[[float], Any], first: bool = False) -> None:
        self._sched = sched
        self._fn = fn
        self._token = 0
        self.due: float | None = None
        # A mark: runs before everything else due at its time (see Scheduler.mark_at).
        self.first = first

    def reschedule(self, due: float | None) -> None:
        self._token += 1  # before counting the old entry stale: a compaction may run then
        if self.due is not None:
            self._sched.stale()
        self.due = due
        if due is not None:
            self._sched.at(due, self, self._token, self.first)

    def cancel(self) -> None:
        self.reschedule(None)

    def turn(self, now: float) -> None:
        self.due = None
        self._fn(now)


class Waiter:
    """One async task waiting: for a deadline, for a wake by another task, or both.

    Woken at most once; `wake()` on a woken waiter does nothing, so racing wakers (a timer
    and an event) are harmless. The task counts as runnable again from the moment it is
    woken, so virtual time cannot jump past it before it has run.
    """

    __slots__ = ("_sched", "_future", "_timed", "_token", "deadline", "woken", "reason")

    def __init__(self, sched: Scheduler, deadline: float | None) -> None:
        self._sched = sched
        self._future: asyncio.Future | None = None
        self._timed = False
        self._token = 0  # its heap entry's token; 1 once woken, which makes the entry stale
        self.deadline = deadline
        self.woken = False
        self.reason: str | None = None

    def wake(self, reason: str = "woken") -> None:
        if self.woken:
            return
        self.woken = True
        self.reason = reason
        self._token = 1
        sched = self._sched
        if self._timed:
            self._timed = False
            sched.stale()
        future = self._future
        if future is not None:  # a task is waiting: it is runnable from now
            sched._runnable += 1
            if not future.done():
                future.set_result(None)

    def turn(self, now: float) -> None:
        self._timed = False
        self.wake("deadline")

    async def wait(self) -> str:
        """Wait until woken or the deadline passes; returns why ("deadline" or a reason)."""
        sched = self._sched
        if self.woken:
            return self.reason or "woken"
        if self.deadline is not None:
            if self.deadline <= sched.clock.now() and not sched.clock.paused:
                self.woken = True
                self.reason = "deadline"
                return "deadline"
            self._timed = True
            sched.at(self.deadline, self, 0)
        self._future = asyncio.get_running_loop().create_future()
        sched._runnable -= 1
        if sched._runnable <= 0:
            sched._poke()
        try:
            await self._future
        except BaseException:
            if not self.woken:  # cancelled while waiting: runnable again, exactly once
                self.woken = True
                self.reason = "cancelled"
                self._token = 1
                sched._runnable += 1
                if self._timed:
                    self._timed = False
                    sched.stale()
            raise
        finally:
            self._future = None
        return self.reason or "woken"


class Scheduler:
    """World time's due work: agents' turns, timers and async waiters, on one calendar."""

    def __init__(self, clock: Clock, burst_seconds: float = BURST_SECONDS) -> None:
        self.clock = clock
        self.virtual = clock.kind == "virtual"
        self.burst_seconds = burst_seconds
        # Wall seconds the event loop gets after a burst that left work due. Headless, the
        # loop has little else to do and a bare yield is enough; an app sets a pause, so
        # that its input, timers and screen updates run in between however busy the world.
        self.pause_seconds = 0.0
        self._times: list[float] = []  # a heap of the distinct due times in the calendar
        self._slots: dict[float, deque[tuple[Due, int]]] = {}  # due time -> its entries, FIFO
        self._entries = 0
        self._ready: deque[Any] = deque()
        self._stale = 0  # entries whose item was woken or re-timed since
        self.compact_after = 256  # stale entries tolerated before they may be dropped at once
        # Engine tasks (waiting on this scheduler through Waiters) that can run now. Under
        # virtual time nothing else runs, and time does not move, until they have waited
        # again: a task woken at t acts at t, before anything else due then.
        self._runnable = 0
        # Async work an agent started (spawn), and its landings held under virtual time.
        self._inflight = 0
        self._started = 0
        self._landed: list[tuple[int, Any]] = []
        self._wakeup: anyio.Event | None = None  # set while the driver sleeps
        self._tg: anyio.abc.TaskGroup | None = None
        self.jumps = 0
        self.bursts = 0
        self._halted = False  # the run is ending: the burst stops and time moves no further
        # Work outside world time that must run by a monotonic moment (a journal commit):
        # run between two items of a burst as soon as it falls due.
        self.due_at = math.inf
        self._due_work: Callable[[], None] | None = None
        clock.on_change(self._poke)

    # -- scheduling --------------------------------------------------------------------------
    def at(self, due: float, item: Due, token: int, first: bool = False) -> None:
        """Run `item.turn(now)` at world time `due` if `item._token` is still `token` then
        (`first`: before everything already due then)."""
        slot = self._slots.get(due)
        if slot is None:
            self._slots[due] = slot = deque()
            heapq.heappush(self._times, due)
        if first:
            slot.appendleft((item, token))
        else:
            slot.append((item, token))
        self._entries += 1
        if self._wakeup is not None:
            self._wakeup.set()  # the driver sleeps: perhaps for longer than until `due`

    def ready(self, agent: Any) -> None:
        """Run `agent.turn(now)` as soon as possible, after those already waiting."""
        self._ready.append(agent)
        if self._wakeup is not None:
            self._wakeup.set()

    def stale(self) -> None:
        """An entry an item pushed was invalidated (it was woken before its deadline)."""
        self._stale += 1
        if self._stale > self.compact_after and 2 * self._stale > self._entries:
            self._compact()

    def _compact(self) -> None:
        """Drop stale entries at once when they are most of the calendar: agents that sleep
        long and are woken early by events would otherwise keep thousands alive."""
        slots = self._slots
        for t in list(slots):
            slot = slots[t]
            live = [e for e in slot if e[0]._token == e[1]]
            if live:
                slot.clear()  # in place: a running burst holds these very objects
                slot.extend(live)
            else:
                del slots[t]
        self._times[:] = slots
        heapq.heapify(self._times)
        self._entries = sum(len(slot) for slot in slots.values())
        self._stale = 0

    def call_at(self, due: float | None, fn: Callable[[float], Any]) -> Timer:
        timer = Timer(self, fn)
        timer.reschedule(due)
        return timer

    def mark_at(self, due: float | None, fn: Callable[[float], Any]) -> Timer:
        """A timer that runs at the start of its instant, before anything else due then:
        the end of a run, a checkpoint. What a mark sees at `due` is the world after
        everything before `due` and nothing at it, whenever the mark was set, so a run cut
        in two at `due` (or resumed from a checkpoint taken there) goes on exactly as one
        run would. (Two marks at one time run newest first; marks never change the world.)"""
        timer = Timer(self, fn, first=True)
        timer.reschedule(due)
        return timer

    def timer(self, fn: Callable[[float], Any]) -> Timer:
        """A timer not yet scheduled (a service's, before `load` puts it in the calendar)."""
        return Timer(self, fn)

    # -- a checkpoint's view of the calendar -----------------------------------------------------
    def dump(self, name_of: Callable[[Any], str | None]) -> dict[str, Any]:
        """The live entries of the calendar, time by time in their order, and the ready
        queue, as names (`name_of(item)`; None leaves an item out: a mark, a waiter of an
        async task). With the names resolved again, `load` rebuilds the same order."""
        calendar = []
        for t in sorted(self._slots):
            names = [n for item, token in self._slots[t] if item._token == token
                     and (n := name_of(item)) is not None]
            if names:
                calendar.append([t, names])
        return {"calendar": calendar, "ready": [n for item in self._ready if (n := name_of(item)) is not None]}

    def load(self, state: dict[str, Any], resolve: Callable[[str, float | None], Any]) -> None:
        """Put the entries back, each under its item's current token, in the order dumped.
        `resolve(name, due)` gives the item (and makes it ready for a wake at `due`; None
        for the ready queue). Entries already in the calendar stay ahead of them."""
        for t, names in state["calendar"]:
            for name in names:
                item = resolve(name, t)
                self.at(t, item, item._token)
        for name in state["ready"]:
            self._ready.append(resolve(name, None))

    def waiter(self, deadline: float | None = None) -> Waiter:
        return Waiter(self, deadline)

    async def sleep_until(self, deadline: float) -> None:
        await Waiter(self, deadline).wait()

    async def sleep(self, seconds: float) -> None:
        await Waiter(self, self.clock.now() + max(0.0, seconds)).wait()

    def task_started(self) -> None:
        """An engine task began: it is runnable until it waits on this scheduler."""
        self._runnable += 1

    def task_finished(self) -> None:
        self._runnable -= 1
        if self._runnable <= 0:
            self._poke()

    def spawn(self, then: Any, awaitable: Awaitable[Any], landed: Callable[[Any], None]) -> None:
        """Start async work for an agent (an LLM call, a sandbox run). When it ends,
        `landed(outcome)` (an exception is an outcome too) and the agent is queued again.

        Under virtual time the clock stands still while any work is in flight, and landings
        are held until none is, then queued in the order the work started: how long a call
        took in wall time never changes what a seeded world does.
        """
        if self._tg is None:
            raise RuntimeError("the scheduler is not running")
        self._inflight += 1
        self._started += 1
        order = self._started

        async def work() -> None:
            try:
                outcome = await awaitable
            except Exception as exc:
                outcome = exc
            except BaseException:
                landed(None)  # the run ended under it: the agent starts afresh next run
                self._inflight -= 1
                self._land(order, then)
                raise
            landed(outcome)
            self._inflight -= 1
            self._land(order, then)

        self._tg.start_soon(work)

    def _land(self, order: int, agent: Any) -> None:
        if not self.virtual:
            self.ready(agent)
            return
        self._landed.append((order, agent))
        if self._inflight == 0:
            self._landed.sort(key=_first)
            self._ready.extend(agent for _, agent in self._landed)
            self._landed.clear()
            self._poke()

    def schedule_due(self, at: float, work: Callable[[], None] | None) -> None:
        """Have `work` (synchronous, quick) run once soon after the monotonic moment `at`."""
        self._due_work = work
        self.due_at = math.inf if work is None else at
        self._poke()

    def run_due(self) -> None:
        work, self._due_work = self._due_work, None
        self.due_at = math.inf
        if work is not None:
            work()

    # -- reading -----------------------------------------------------------------------------
    @property
    def pending_timers(self) -> int:
        return sum(1 for slot in self._slots.values() for item, token in slot if item._token == token)

    def next_deadline(self) -> float | None:
        self._drop_stale_top()
        return self._times[0] if self._times else None

    def _drop_stale_top(self) -> None:
        """Drop stale entries (and emptied times) from the front of the calendar."""
        times, slots = self._times, self._slots
        while times:
            slot = slots[times[0]]
            while slot and slot[0][0]._token != slot[0][1]:
                slot.popleft()
                self._entries -= 1
                self._stale -= 1
            if slot:
                return
            del slots[heapq.heappop(times)]

    # -- running -----------------------------------------------------------------------------
    def halt(self) -> None:
        """End the current burst at once (the run is over); `run` clears it when it starts."""
        self._halted = True

    def _poke(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()

    def advance(self, seconds: float) -> None:
        """Virtual time only: move time forward by hand and run what falls due (tests)."""
        self.clock.advance(seconds)
        self._burst(self.clock.now(), math.inf, jump=False)

    def _burst(self, now: float, wall_end: float, jump: bool) -> float:
        """Run what is due at `now` (jumping virtual time forward when allowed) until nothing
        is, or the burst's wall time is up. Returns world time at the end."""
        times, slots, ready = self._times, self._slots, self._ready
        popleft = ready.popleft
        clock = self.clock
        virtual = self.virtual
        monotonic = time.monotonic
        n = 0
        while True:
            if virtual and self._runnable > 0:
                return now  # an engine task was woken: it goes first (see _runnable)
            if ready:
                popleft().turn(now)
            elif times and times[0] <= now:
                slot = slots[times[0]]
                if not slot:  # every entry of that time has run
                    del slots[heapq.heappop(times)]
                    continue
                item, token = slot.popleft()
                self._entries -= 1
                if item._token == token:
                    item.turn(now)
                    if self._halted:
                        return now
                else:
                    self._stale -= 1
                    continue
            elif jump and times and self._inflight == 0 and not self._halted:
                self._drop_stale_top()
                if times:
                    now = times[0]
                    clock.jump_to(now)
                    self.jumps += 1
                continue
            else:
                return now
            n += 1
            if n >= CHECK_EVERY:
                n = 0
                wall = monotonic()
                if wall >= self.due_at:
                    self.run_due()
                if wall >= wall_end:
                    return now
                if not virtual:
                    now = clock.now()
                if clock.paused:
                    return now

    def _can_run(self, now: float) -> bool:
        """Is there work the driver could do now, without waiting for anything?"""
        if self.clock.paused or (self.virtual and self._runnable > 0):
            return False
        if self._ready:
            return True
        self._drop_stale_top()
        if not self._times:
            return False
        return self._times[0] <= now or (self.virtual and self._inflight == 0)

    async def run(self) -> None:
        """The driver, one task in the world's task group: bursts of due work, then the
        event loop's turn, then sleep until the next due entry or a wake."""
        clock = self.clock
        monotonic = time.monotonic
        self._halted = False
        async with anyio.create_task_group() as tg:
            self._tg = tg
            try:
                while not self._halted:
                    if monotonic() >= self.due_at:
                        self.run_due()
                    if clock.paused:
                        await self._sleep(None)
                        continue
                    now = clock.now()
                    self.bursts += 1
                    now = self._burst(now, monotonic() + self.burst_seconds, self.virtual)
                    if self._halted:
                        break
                    if self._can_run(now):
                        # The burst's time is up: the event loop's turn.
                        if self.pause_seconds > 0:
                            await self._give_way()
                        else:
                            await anyio.lowlevel.checkpoint()
                        continue
                    if self.virtual:
                        # Nothing can run: an engine task or async work must go first, or
                        # nothing is scheduled at all.
                        await self._sleep(None)
                    else:
                        self._drop_stale_top()
                        delay = None
                        if self._times:
                            delay = max(0.0, (self._times[0] - clock.now()) / clock.speed)
                        await self._sleep(delay)
            finally:
                self._tg = None
                tg.cancel_scope.cancel()

    async def _give_way(self) -> None:
        """The event loop's turn between two bursts (an app's input, timers and screen
        updates): for as long as other callbacks are ready to run, up to `pause_seconds`.
        A fixed pause would cost the world its length after every burst even when the loop
        has nothing to do; yielding while others are ready lets a keypress go through its
        chain of message hops at once, and gives the world the loop back when it is idle."""
        await anyio.lowlevel.checkpoint()
        ready = getattr(asyncio.get_running_loop(), "_ready", None)  # CPython's ready queue
        if ready is None:  # another loop (uvloop): no way to tell, so a fixed pause
            await anyio.sleep(self.pause_seconds)
            return
        end = time.monotonic() + self.pause_seconds
        while ready and time.monotonic() < end:
            await anyio.lowlevel.checkpoint()

    async def _sleep(self, delay: float | None) -> None:
        """Until poked (a wake, an earlier deadline, async work ending, a clock change) or
        `delay` wall seconds, also bounded by due work outside world time."""
        if self.due_at != math.inf:
            until_due = max(0.0, self.due_at - time.monotonic())
            delay = until_due if delay is None else min(delay, until_due)
        wakeup = self._wakeup = anyio.Event()
        if self._can_run(self.clock.now()):
            wakeup.set()  # became runnable between the burst and here
        try:
            if delay is None:
                await wakeup.wait()
            else:
                with anyio.move_on_after(delay):
                    await wakeup.wait()
        finally:
            self._wakeup = None


def _first(pair: tuple[int, Any]) -> int:
    return pair[0]


__all__ = ["Scheduler", "Timer", "Waiter", "BURST_SECONDS"]
