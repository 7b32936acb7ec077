"""World time: the only place that reads time.

Two clocks share one timer heap of waiters keyed by world-time deadlines:

* `RealClock` follows the machine's monotonic clock, scaled by a live-changeable speed
  factor; a driver task sleeps until the earliest deadline and is re-timed when an earlier
  waiter arrives, the speed changes or the world is paused.
* `VirtualClock` jumps to the next due deadline as soon as every engine task is waiting.
  It knows that because every engine wait goes through `Waiter.wait()` (which marks the task
  idle) and every wake through `Waiter.wake()` (which marks it runnable again before it
  runs). Work that waits on anything else (a thread, a socket) keeps its task counted as
  runnable, so time does not jump past an LLM call or a Docker round trip.

World time is a float of seconds since the world's epoch; `wall_time()` gives ISO-8601 for
the observations agents get.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from datetime import datetime, timedelta, timezone

import anyio

DEFAULT_EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)


class Waiter:
    """One engine task waiting: for a deadline, for a wake by another task, or both.

    A waiter is woken at most once; `wake()` on a woken or cancelled waiter does nothing,
    so racing wakers (a timer and a rescue) are harmless. On asyncio it waits on a bare
    future (a frozen agent waits once per action, so this is hot); on other anyio
    backends on an `anyio.Event`.
    """

    __slots__ = ("_clock", "_signal", "_waiting", "_timed", "deadline", "woken", "reason", "__weakref__")

    def __init__(self, clock: Clock, deadline: float | None) -> None:
        self._clock = clock
        self._signal = None  # an asyncio future or an anyio Event, made when waiting starts
        self._waiting = False
        self._timed = False  # in the clock's timer heap
        self.deadline = deadline
        self.woken = False
        self.reason: str | None = None

    def wake(self, reason: str = "woken") -> None:
        if self.woken:
            return
        self.woken = True
        self.reason = reason
        if self._timed:  # woken before its deadline: its heap entry is stale now
            self._clock._stale_timer()
        if self._waiting:  # woken before it waited: wait() returns at once, count untouched
            self._clock._runnable += 1
            signal = self._signal
            if signal.__class__ is anyio.Event or isinstance(signal, anyio.Event):
                signal.set()
            elif not signal.done():
                signal.set_result(None)

    async def wait(self) -> str:
        """Wait until woken or the deadline passes; returns why ("deadline" or a reason)."""
        clock = self._clock
        if self.woken:
            return self.reason or "woken"
        if self.deadline is not None:
            if self.deadline <= clock.now() and not clock.paused:
                self.woken = True
                self.reason = "deadline"
                return "deadline"
            clock._add_timer(self)
        try:
            signal = asyncio.get_running_loop().create_future()
        except RuntimeError:  # not asyncio (trio): the portable way
            signal = anyio.Event()
        self._signal = signal
        self._waiting = True
        clock._runnable -= 1
        if clock._runnable <= 0:
            clock._maybe_idle()
        try:
            if isinstance(signal, anyio.Event):
                await signal.wait()
            else:
                await signal
        except BaseException:
            # Cancelled while waiting: count the task as runnable again, exactly once.
            if not self.woken:
                self.woken = True
                self.reason = "cancelled"
                clock._runnable += 1
                if self._timed:
                    clock._stale_timer()
            raise
        finally:
            self._signal = None  # a stale heap entry keeps the waiter, not its future
        return self.reason or "woken"


class Clock:
    """World time with a heap of deadline waiters. Subclasses say how time passes."""

    kind = "abstract"

    def __init__(self, epoch: datetime = DEFAULT_EPOCH, start: float = 0.0) -> None:
        self.epoch = epoch
        self._timers: list[tuple[float, int, Waiter]] = []
        # Entries of waiters woken before their deadline. They are dropped when they reach
        # the top, or all at once when they are most of the heap: agents that sleep long and
        # are woken early by events would otherwise keep thousands alive (a soak's memory,
        # and the collector's work).
        self._stale = 0
        self._seq = itertools.count()
        # Engine tasks not waiting on a Waiter. Only the virtual clock acts on it, but both
        # keep it so the same engine code runs under either clock.
        self._runnable = 0
        self._changed = anyio.Event()  # the driver re-plans when this is set
        self._paused = False
        self._start = start

    # -- time -------------------------------------------------------------------------
    def now(self) -> float:
        raise NotImplementedError

    def wall_time(self, at: float | None = None) -> str:
        t = self.now() if at is None else at
        return (self.epoch + timedelta(seconds=t)).isoformat(timespec="seconds")

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def speed(self) -> float:
        return 1.0

    # -- waiting ------------------------------------------------------------------------
    def waiter(self, deadline: float | None = None) -> Waiter:
        return Waiter(self, deadline)

    async def sleep_until(self, deadline: float) -> None:
        await Waiter(self, deadline).wait()

    async def sleep(self, seconds: float) -> None:
        await Waiter(self, self.now() + max(0.0, seconds)).wait()

    def task_started(self) -> None:
        """An engine task began: it is runnable until it waits."""
        self._runnable += 1

    def task_finished(self) -> None:
        self._runnable -= 1
        self._maybe_idle()

    @property
    def pending_timers(self) -> int:
        return sum(1 for _, _, w in self._timers if not w.woken)

    def next_deadline(self) -> float | None:
        self._drop_woken()
        return self._timers[0][0] if self._timers else None

    def _add_timer(self, waiter: Waiter) -> None:
        first = not self._timers or waiter.deadline < self._timers[0][0]
        waiter._timed = True
        heapq.heappush(self._timers, (waiter.deadline, next(self._seq), waiter))
        if first:
            self._replan()

    def _stale_timer(self) -> None:
        self._stale += 1
        timers = self._timers
        if self._stale > 256 and 2 * self._stale > len(timers):
            live = []
            for e in timers:
                if e[2].woken:
                    e[2]._timed = False
                else:
                    live.append(e)
            heapq.heapify(live)
            timers[:] = live  # in place: a caller may be holding the list
            self._stale = 0

    def _pop(self) -> Waiter:
        w = heapq.heappop(self._timers)[2]
        w._timed = False
        if w.woken:
            self._stale -= 1
        return w

    def _drop_woken(self) -> None:
        timers = self._timers
        while timers and timers[0][2].woken:
            self._pop()

    def _fire_due(self, now: float) -> int:
        timers = self._timers
        fired = 0
        while timers and timers[0][0] <= now:
            w = self._pop()
            if not w.woken:
                w.wake("deadline")
                fired += 1
        return fired

    def _replan(self) -> None:
        self._changed.set()

    def _maybe_idle(self) -> None:
        pass

    # -- control ---------------------------------------------------------------------------
    def pause(self) -> None:
        self._paused = True
        self._replan()

    def resume(self) -> None:
        self._paused = False
        self._replan()

    async def run(self) -> None:
        """The driver: fires due waiters. Runs as a task in the world's task group."""
        raise NotImplementedError


class RealClock(Clock):
    """Machine time scaled by `speed`; pausing stops world time."""

    kind = "real"

    def __init__(
        self,
        speed: float = 1.0,
        epoch: datetime = DEFAULT_EPOCH,
        start: float = 0.0,
        monotonic=time.monotonic,
    ) -> None:
        super().__init__(epoch, start)
        if not speed > 0:
            raise ValueError(f"speed must be > 0, got {speed!r}")
        self._monotonic = monotonic
        self._speed = float(speed)
        self._base_world = start
        self._base_real = monotonic()

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> float:
        if self._paused:
            return self._base_world
        return self._base_world + (self._monotonic() - self._base_real) * self._speed

    def _rebase(self) -> None:
        self._base_world = self.now()
        self._base_real = self._monotonic()

    def set_speed(self, speed: float) -> None:
        if not (isinstance(speed, (int, float)) and speed > 0 and speed < 1e6):
            raise ValueError(f"speed must be a number in (0, 1e6), got {speed!r}")
        self._rebase()
        self._speed = float(speed)
        self._replan()

    def pause(self) -> None:
        if not self._paused:
            self._rebase()
        super().pause()

    def resume(self) -> None:
        if self._paused:
            self._base_real = self._monotonic()
        super().resume()

    async def run(self) -> None:
        while True:
            self._changed = anyio.Event()
            now = self.now()
            if not self._paused:
                self._fire_due(now)
            self._drop_woken()
            if self._paused or not self._timers:
                await self._changed.wait()
                continue
            delay = (self._timers[0][0] - now) / self._speed
            with anyio.move_on_after(max(0.0, delay)):
                await self._changed.wait()


class VirtualClock(Clock):
    """Time stands still while any engine task can run, then jumps to the next deadline."""

    kind = "virtual"

    def __init__(self, epoch: datetime = DEFAULT_EPOCH, start: float = 0.0) -> None:
        super().__init__(epoch, start)
        self._now = start
        self._idle = anyio.Event()
        self.jumps = 0

    def now(self) -> float:
        return self._now

    @property
    def speed(self) -> float:
        return float("inf")

    def _maybe_idle(self) -> None:
        if self._runnable <= 0:
            self._idle.set()

    def _replan(self) -> None:
        super()._replan()
        self._idle.set()

    def advance(self, seconds: float) -> None:
        """Move time forward by hand (tests), firing what falls due."""
        self._now += seconds
        self._fire_due(self._now)

    async def run(self) -> None:
        while True:
            await self._idle.wait()
            self._idle = anyio.Event()
            # Let tasks that were just woken (or are between two checkpoints) run first;
            # only a quiet loop lets time jump.
            await anyio.lowlevel.checkpoint()
            if self._runnable > 0 or self._paused:
                continue
            self._drop_woken()
            if not self._timers:
                continue  # quiescent: wait for an outside wake (operator, spawn)
            deadline = self._timers[0][0]
            if deadline > self._now:
                self._now = deadline
                self.jumps += 1
            self._fire_due(self._now)
