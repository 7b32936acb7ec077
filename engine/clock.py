"""World time: the only place that reads time.

* `RealClock` follows the machine's monotonic clock, scaled by a live-changeable speed
  factor; pausing stops world time.
* `VirtualClock` stands still until the scheduler moves it to the next due entry (or a
  test moves it by hand).

World time is a float of seconds since the world's epoch; `wall_time()` gives ISO-8601 for
the observations agents get. What falls due when is the scheduler's business
(engine/scheduler.py); a clock only tells it when its speed or pause changes.
"""

from __future__ import annotations

import math
import time
from datetime import datetime, timedelta, timezone
from typing import Callable

DEFAULT_EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)
MAX_SPEED = 1e6  # world seconds per real second; the world file's bound too


class Clock:
    """World time. Subclasses say how it passes."""

    kind = "abstract"

    def __init__(self, epoch: datetime = DEFAULT_EPOCH, start: float = 0.0) -> None:
        self.epoch = epoch
        self._paused = False
        self._start = start
        self._listeners: list[Callable[[], None]] = []

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

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call `listener` whenever the speed or the pause changes (the scheduler re-plans)."""
        self._listeners.append(listener)

    def _changed(self) -> None:
        for listener in self._listeners:
            listener()

    def pause(self) -> None:
        self._paused = True
        self._changed()

    def resume(self) -> None:
        self._paused = False
        self._changed()

    # Virtual time only (the scheduler calls these only when `kind` is "virtual").
    def jump_to(self, t: float) -> None:
        raise TypeError(f"a {self.kind} clock cannot be moved by hand")

    def advance(self, seconds: float) -> None:
        raise TypeError(f"a {self.kind} clock cannot be moved by hand")


class RealClock(Clock):
    """Machine time scaled by `speed`; pausing stops world time."""

    kind = "real"

    def __init__(
        self,
        speed: float = 1.0,
        epoch: datetime = DEFAULT_EPOCH,
        start: float = 0.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(epoch, start)
        _check_speed(speed)
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
        _check_speed(speed)
        self._rebase()
        self._speed = float(speed)
        self._changed()

    def pause(self) -> None:
        if not self._paused:
            self._rebase()
        super().pause()

    def resume(self) -> None:
        if self._paused:
            self._base_real = self._monotonic()
        super().resume()


class VirtualClock(Clock):
    """Time stands still until the scheduler jumps it to the next due entry."""

    kind = "virtual"

    def __init__(self, epoch: datetime = DEFAULT_EPOCH, start: float = 0.0) -> None:
        super().__init__(epoch, start)
        self._now = start

    def now(self) -> float:
        return self._now

    @property
    def speed(self) -> float:
        return math.inf

    def jump_to(self, t: float) -> None:
        """The scheduler moves time to its next due entry (never backwards)."""
        if t > self._now:
            self._now = t

    def advance(self, seconds: float) -> None:
        """Move time forward by hand (tests); the scheduler's `advance` also runs what falls due."""
        self._now += seconds


def _check_speed(speed: object) -> None:
    if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not math.isfinite(speed):
        raise ValueError(f"speed must be a finite number, got {speed!r}")
    if not 0 < speed <= MAX_SPEED:
        raise ValueError(f"speed must be in (0, {MAX_SPEED:g}], got {speed!r}")
