"""SPEC §2 token bucket rules and the injectable clocks (§3), as units (the scheduler that
runs what falls due is tested in test_scheduler.py)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.bucket import TokenBucket
from engine.clock import DEFAULT_EPOCH, RealClock, VirtualClock


class FakeMonotonic:
    """A machine clock the test moves by hand."""

    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


# -- token bucket -------------------------------------------------------------------------------


def test_new_bucket_starts_full_unless_configured():
    assert TokenBucket(rate=1.0, capacity=7.0, now=0.0).balance == 7.0
    assert TokenBucket(rate=1.0, capacity=7.0, now=0.0, balance=2.0).balance == 2.0
    # A configured start above capacity is capped; a start in debt is kept.
    assert TokenBucket(rate=1.0, capacity=7.0, now=0.0, balance=50.0).balance == 7.0
    assert TokenBucket(rate=1.0, capacity=7.0, now=0.0, balance=-3.0).balance == -3.0


def test_accrual_is_continuous_not_stepwise():
    b = TokenBucket(rate=2.0, capacity=100.0, now=0.0, balance=0.0)
    assert b.accrue(0.25) == pytest.approx(0.5, abs=1e-12)
    assert b.accrue(0.3) == pytest.approx(0.6, abs=1e-12)
    assert b.accrue(1.7) == pytest.approx(3.4, abs=1e-12)
    assert b.last_update == 1.7


@given(
    rate=st.floats(0.0, 50.0),
    capacity=st.floats(0.0, 500.0),
    start=st.floats(-100.0, 500.0),
    gaps=st.lists(st.floats(0.0, 30.0), min_size=1, max_size=20),
)
def test_many_small_accruals_equal_one_big_one_capped_at_capacity(rate, capacity, start, gaps):
    many = TokenBucket(rate, capacity, 0.0, balance=start)
    t = 0.0
    for gap in gaps:
        t += gap
        balance = many.accrue(t)
        assert balance <= capacity + 1e-9  # never above capacity
    one = TokenBucket(rate, capacity, 0.0, balance=start)
    expected = min(capacity, min(start, capacity) + rate * t)
    assert one.accrue(t) == pytest.approx(expected, rel=1e-9, abs=1e-6)
    assert many.balance == pytest.approx(expected, rel=1e-9, abs=1e-6)


def test_capped_at_capacity():
    b = TokenBucket(rate=5.0, capacity=10.0, now=0.0, balance=8.0)
    assert b.accrue(0.2) == pytest.approx(9.0)
    assert b.accrue(100.0) == 10.0
    assert b.accrue(1e6) == 10.0


def test_no_reset_moment_balance_has_no_jump_at_any_boundary():
    """Around 1 s, 10 s, 60 s and 3600 s the balance moves by exactly rate*dt: nothing
    refills it to capacity at a boundary."""
    b = TokenBucket(rate=0.5, capacity=5000.0, now=0.0, balance=-20.0)
    for boundary in (1.0, 10.0, 60.0, 3600.0):
        before = b.peek(boundary - 1e-3)
        at = b.peek(boundary)
        after = b.peek(boundary + 1e-3)
        assert at - before == pytest.approx(0.5e-3, abs=1e-9)
        assert after - at == pytest.approx(0.5e-3, abs=1e-9)
        assert at == pytest.approx(-20.0 + 0.5 * boundary)


def test_spending_after_capacity_starts_from_where_it_was():
    b = TokenBucket(rate=1.0, capacity=10.0, now=0.0)
    b.spend(8.0, 0.0)
    assert b.accrue(1.0) == pytest.approx(3.0)  # 2 + 1, not back to 10
    b.spend(3.0, 1.0)
    assert b.accrue(60.0) == 10.0  # capacity is reached by accrual only (59 s at 1/s)
    assert b.peek(60.0) == 10.0


def test_spending_into_debt_always_succeeds():
    b = TokenBucket(rate=2.0, capacity=10.0, now=0.0)
    assert b.spend(15.0, 0.0) == -5.0
    assert b.spend(1000.0, 0.0) == -1005.0
    assert b.time_until_non_negative(0.0) == pytest.approx(502.5)


def test_time_until_non_negative_is_exact():
    b = TokenBucket(rate=3.0, capacity=10.0, now=0.0, balance=-7.5)
    assert b.time_until_non_negative(0.0) == 2.5
    assert b.time_until_non_negative(1.0) == pytest.approx(1.5)
    assert b.time_until_non_negative(10.0) == 0.0
    broke = TokenBucket(rate=0.0, capacity=10.0, now=0.0, balance=-1.0)
    assert math.isinf(broke.time_until_non_negative(5.0))


def test_peek_does_not_record_the_accrual():
    b = TokenBucket(rate=1.0, capacity=10.0, now=0.0, balance=0.0)
    assert b.peek(4.0) == 4.0
    assert b.last_update == 0.0 and b.balance == 0.0
    assert b.peek(-1.0) == 0.0  # the past is not rewritten


def test_rate_change_accrues_first_then_applies_from_that_instant():
    b = TokenBucket(rate=1.0, capacity=100.0, now=0.0, balance=0.0)
    b.set_rate(3.0, 2.0)
    assert b.balance == pytest.approx(2.0) and b.last_update == 2.0
    assert b.accrue(3.0) == pytest.approx(5.0)
    b.set_rate(0.0, 4.0)
    assert b.accrue(100.0) == pytest.approx(8.0)


def test_capacity_change_accrues_first_and_clamps():
    b = TokenBucket(rate=1.0, capacity=10.0, now=0.0, balance=0.0)
    b.set_capacity(4.0, 6.0)  # accrued to 6 first, then clamped to 4
    assert b.balance == 4.0 and b.capacity == 4.0
    b.set_capacity(20.0, 6.0)
    assert b.accrue(10.0) == pytest.approx(8.0)


def test_credit_is_clamped_at_capacity():
    b = TokenBucket(rate=0.0, capacity=10.0, now=0.0, balance=8.0)
    assert b.credit(5.0, 0.0) == 2.0
    assert b.balance == 10.0
    assert b.credit(5.0, 0.0) == 0.0
    debtor = TokenBucket(rate=0.0, capacity=10.0, now=0.0, balance=-4.0)
    assert debtor.credit(12.0, 0.0) == 12.0 and debtor.balance == 8.0


@pytest.mark.parametrize("bad", [-1.0, math.inf, math.nan])
def test_bucket_rejects_bad_rate_and_capacity(bad):
    with pytest.raises(ValueError):
        TokenBucket(rate=bad, capacity=1.0, now=0.0)
    with pytest.raises(ValueError):
        TokenBucket(rate=1.0, capacity=bad, now=0.0)
    b = TokenBucket(rate=1.0, capacity=1.0, now=0.0)
    with pytest.raises(ValueError):
        b.set_rate(bad, 1.0)
    with pytest.raises(ValueError):
        b.set_capacity(bad, 1.0)
    assert b.rate == 1.0 and b.capacity == 1.0


# -- virtual clock --------------------------------------------------------------------------------


def test_wall_time_is_iso8601_from_the_epoch():
    epoch = datetime(2030, 5, 1, 12, 0, tzinfo=timezone.utc)
    clock = VirtualClock(epoch=epoch)
    clock.advance(90.0)
    assert clock.wall_time() == "2030-05-01T12:01:30+00:00"
    assert datetime.fromisoformat(clock.wall_time(3600.0)) == epoch + timedelta(hours=1)
    assert VirtualClock().wall_time() == DEFAULT_EPOCH.isoformat(timespec="seconds")


# -- real clock with a fake machine clock ------------------------------------------------------


def test_real_clock_follows_the_injected_monotonic_scaled_by_speed():
    mono = FakeMonotonic()
    clock = RealClock(speed=2.0, monotonic=mono)
    assert clock.now() == 0.0
    mono.t += 3.0
    assert clock.now() == 6.0
    clock.set_speed(0.5)  # rebases: no jump at the change
    assert clock.now() == 6.0
    mono.t += 4.0
    assert clock.now() == 8.0
    with pytest.raises(ValueError):
        clock.set_speed(0)
    with pytest.raises(ValueError):
        RealClock(speed=-1.0, monotonic=mono)
    assert clock.speed == 0.5


def test_real_clock_pause_stops_world_time_and_resume_continues():
    mono = FakeMonotonic()
    clock = RealClock(monotonic=mono)
    mono.t += 5.0
    clock.pause()
    mono.t += 100.0
    assert clock.paused and clock.now() == 5.0
    clock.resume()
    assert clock.now() == 5.0  # no jump for the paused stretch
    mono.t += 1.0
    assert clock.now() == 6.0
