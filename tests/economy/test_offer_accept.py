"""Loans at the edges (issue 12): an offer whose due time or owed-at-due cannot be
represented is refused at `offer`, holding nothing; and no `accept` of an offer that was
made can fail after the principal moved: every accept of every accepted offer completes,
with the principal moved exactly once and what is owed at due exactly the reference.
(A fault injected inside accept after the principal moved is undone: test_waist_wall.py.)
"""

from __future__ import annotations

import math
import sys
from fractions import Fraction

import pytest
from econ import call, full_state, ok, settle_buckets
from ecotest import all_true, make_world
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.clock import VirtualClock

DAY = 86_400
MAX = 2**53 - 1


def world_at(start: float = 0.0, max_rate: float = 50.0):
    return make_world([{"scrip": MAX}, {"prefix": "d", "scrip": 0}], clock=VirtualClock(start=start),
                      contracts={"max_rate_per_day": max_rate})


def offer(world, principal, rate, due_in):
    return call(world, "a001", "contracts", "offer",
                {"debtor": "d001", "principal": principal, "rate_per_day": rate, "due_in": due_in})


@pytest.mark.parametrize("principal, rate, due_in, arg, fragment", [
    (10**6, 10, 1e308, "due_in", "due_in must be a decimal number in (0, 10^9] seconds, got 1e+308"),
    (10**6, 10, 10**400, "due_in", "got an integer of 401 digits"),
    (10**6, 10, math.inf, "due_in", "got inf"),
    (10**6, 10, math.nan, "due_in", "got nan"),
    (10**6, 10, 10**9 + 1, "due_in", "(0, 10^9] seconds"),
    (10**6, 1e308, 60.0, "rate_per_day", "rate_per_day must be a decimal number in [0, 50] per day"),
    (10**6, 10**400, 60.0, "rate_per_day", "got an integer of 401 digits"),
    (2**53, 0, 60.0, "principal", "principal must be a whole number of scrip in [1, 2^53-1]"),
    (10**18, 0, 60.0, "principal", "[1, 2^53-1], got 1000000000000000000"),
    (10**15, 10, 10**9, "principal", "would owe 115741740740740740740 at due, more than the largest amount"),
    (MAX, 0.000000001, DAY, "principal", "would owe 9007199263748190 at due"),
    (10**15, 50, 15_552_000.0, "principal", "more than the largest amount of scrip (2^53-1)"),
])
def test_an_offer_that_cannot_be_represented_is_refused_at_offer(principal, rate, due_in, arg, fragment):
    world = world_at()
    settle_buckets(world)
    before = full_state(world)
    r = offer(world, principal, rate, due_in)
    assert not r.ok and r.arg == arg and fragment in r.error, r
    assert full_state(world) == before and world.ledger.held.get("contracts", 0) == 0


def test_the_largest_loans_that_can_be_represented_are_accepted_and_collected():
    for principal, rate, due_in in ((MAX, 0, 10**9), (MAX - 200, 0.000000001, 1.0), (10**15, 8.006, 86_400.0)):
        world = world_at()
        r = offer(world, principal, rate, due_in)
        expected = principal + math.floor(principal * Fraction(repr(rate)) * Fraction(repr(due_in)) / DAY)
        assert expected <= MAX and ok(r)["owed_at_due"] == expected
        accepted = ok(call(world, "d001", "contracts", "accept", {"contract": r.value["contract"]}))
        assert accepted["owed_at_due"] == expected and world.ledger.scrip["d001"] == principal
        assert all_true(world.invariants())


def test_a_due_time_past_the_clock_s_range_is_refused_at_offer_and_at_accept():
    """A world whose clock stands at the largest float: no due time after it exists."""
    world = world_at(start=sys.float_info.max)
    before = full_state(world)
    r = offer(world, 100, 0.1, 60.0)
    assert not r.ok and r.arg == "due_in" and "cannot be represented" in r.error, r
    assert full_state(world) == before
    # An offer made while a due time could still be represented, accepted when it cannot:
    world = world_at(start=sys.float_info.max / 2)
    cid = ok(offer(world, 100, 0.1, 60.0))["contract"]
    world.clock.advance(sys.float_info.max / 2)
    settle_buckets(world)
    before = full_state(world)
    r = call(world, "d001", "contracts", "accept", {"contract": cid})
    assert not r.ok and "cannot be represented" in r.error and full_state(world) == before
    assert world.contracts.contracts[cid].content["status"] == "offered"
    assert ok(call(world, "a001", "contracts", "cancel", {"contract": cid})) is None  # the lender can take it back
    assert world.ledger.scrip["a001"] == MAX and all_true(world.invariants())


EDGE_DUES = st.one_of(st.sampled_from([5e-324, 1e-9, 0.001, 1, 59.999, 86_400, 10**9, 1e9 - 0.001]),
                      st.floats(min_value=5e-324, max_value=1e9), st.integers(1, 10**9))
EDGE_RATES = st.one_of(st.sampled_from([0, 0.0, -0.0, 5e-324, 1e-9, 0.57, 49.999999999, 50, 50.0]),
                       st.floats(0, 50), st.decimals(0, 50, places=9).map(float), st.integers(0, 50))
EDGE_PRINCIPALS = st.one_of(st.sampled_from([1, 2, 10**6, 10**15, MAX - 1, MAX]), st.integers(1, MAX))
CLOCKS = st.one_of(st.sampled_from([0.0, 0.1, 1e6, 1e15, 2**53 + 0.0, 1e300]), st.floats(0, 1e300))


@settings(max_examples=400, deadline=None)
@given(principal=EDGE_PRINCIPALS, rate=EDGE_RATES, due_in=EDGE_DUES, start=CLOCKS, later=st.floats(0, 1e6))
def test_no_accept_of_an_accepted_offer_fails(principal, rate, due_in, start, later):
    world = world_at(start=start)
    r = offer(world, principal, rate, due_in)
    exact = principal + math.floor(principal * Fraction(repr(rate) if type(rate) is float else rate)
                                   * (Fraction(repr(due_in)) if type(due_in) is float else due_in) / DAY)
    if not r.ok:  # refused only because what is owed at due cannot be held exactly
        assert exact > MAX and r.arg == "principal", r
        return
    assert r.value["owed_at_due"] == exact <= MAX
    world.clock.advance(later)
    held, debtor = world.ledger.held["contracts"], world.ledger.scrip["d001"]
    accepted = call(world, "d001", "contracts", "accept", {"contract": r.value["contract"]})
    assert accepted.ok, accepted
    assert world.ledger.held["contracts"] == held - principal and world.ledger.scrip["d001"] == debtor + principal
    assert accepted.value["owed_at_due"] == exact
    assert Fraction(accepted.value["due"]) >= Fraction(world.clock.now()) + Fraction(
        repr(due_in) if type(due_in) is float else due_in)
    assert all_true(world.invariants()) and world.waist.engine_errors == 0
