"""The token bucket with debt (SPEC §2): how compute flows to an agent.

The bucket accrues `elapsed * rate` on every access, capped at `capacity`; there is never a
reset. Spending always succeeds and may push the balance below zero (debt). Rate and
capacity change live: the bucket accrues up to that instant first, then changes.
Times are world seconds from the injected clock; the bucket never reads time itself.
"""

from __future__ import annotations

import math


class TokenBucket:
    __slots__ = ("rate", "capacity", "balance", "last_update")

    def __init__(
        self, rate: float, capacity: float, now: float, balance: float | None = None
    ) -> None:
        if not (rate >= 0 and math.isfinite(rate)):
            raise ValueError(f"rate must be a finite number >= 0, got {rate!r}")
        if not (capacity >= 0 and math.isfinite(capacity)):
            raise ValueError(f"capacity must be a finite number >= 0, got {capacity!r}")
        self.rate = float(rate)
        self.capacity = float(capacity)
        # A new bucket starts full unless told otherwise.
        self.balance = float(capacity if balance is None else min(balance, capacity))
        self.last_update = now

    def accrue(self, now: float) -> float:
        """Bring the balance up to `now` and return it."""
        elapsed = now - self.last_update
        if elapsed > 0:
            balance = self.balance + elapsed * self.rate
            self.balance = balance if balance < self.capacity else self.capacity
            self.last_update = now
        return self.balance

    def spend(self, amount: float, now: float) -> float:
        """Take `amount` (may go into debt); returns the new balance."""
        self.accrue(now)
        self.balance -= amount
        return self.balance

    def credit(self, amount: float, now: float) -> float:
        """Add up to `amount`, clamped at capacity; returns what was actually credited."""
        balance = self.accrue(now)
        room = self.capacity - balance
        credited = amount if amount < room else max(0.0, room)
        self.balance = balance + credited
        return credited

    def set_rate(self, rate: float, now: float) -> None:
        if not (rate >= 0 and math.isfinite(rate)):
            raise ValueError(f"rate must be a finite number >= 0, got {rate!r}")
        self.accrue(now)
        self.rate = float(rate)

    def set_capacity(self, capacity: float, now: float) -> None:
        if not (capacity >= 0 and math.isfinite(capacity)):
            raise ValueError(f"capacity must be a finite number >= 0, got {capacity!r}")
        self.accrue(now)
        self.capacity = float(capacity)
        if self.balance > capacity:
            self.balance = float(capacity)

    def time_until_non_negative(self, now: float) -> float:
        """Seconds until the balance reaches zero again: exactly `-balance / rate`.

        0 when not in debt; infinity when in debt with no rate to pay it back.
        """
        balance = self.accrue(now)
        if balance >= 0:
            return 0.0
        if self.rate <= 0:
            return math.inf
        return -balance / self.rate

    def peek(self, now: float) -> float:
        """The balance at `now` without recording the accrual."""
        elapsed = now - self.last_update
        if elapsed <= 0:
            return self.balance
        balance = self.balance + elapsed * self.rate
        return balance if balance < self.capacity else self.capacity

    def __repr__(self) -> str:
        return (
            f"TokenBucket(rate={self.rate}, capacity={self.capacity}, "
            f"balance={self.balance:.3f}, last_update={self.last_update})"
        )
