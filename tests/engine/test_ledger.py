"""The ledger's moves (SPEC §2): scrip, rescues, rate, spawning; each all-or-nothing."""

from __future__ import annotations

import math

import pytest

from ecotest import all_true, make_world, state
from engine.errors import Refusal
from engine.ledger import MICRO, Ledger, check_quantity, check_scrip


def two_accounts(cap_a: float = 10.0, cap_b: float = 10.0) -> Ledger:
    ledger = Ledger(total_rate=3.0)
    ledger.open_account("a", scrip=20, rate=1.0, capacity=cap_a, now=0.0, disk_quota=100)
    ledger.open_account("b", scrip=5, rate=2.0, capacity=cap_b, now=0.0, disk_quota=100)
    return ledger


def test_scrip_transfer_moves_exactly_and_conserves():
    ledger = two_accounts()
    assert ledger.transfer_scrip("a", "b", 7) == 7
    assert ledger.scrip == {"a": 13, "b": 12}
    assert ledger.initial_scrip == 25 and all_true(ledger.invariants())


@pytest.mark.parametrize(
    "amount, code",
    [(0, "invalid"), (-1, "invalid"), (1.0, "invalid"), (2.5, "invalid"), (True, "invalid"),
     ("3", "invalid"), (None, "invalid"), (10**30, "invalid"), (2**53, "invalid"), (2**53 - 1, "insufficient"),
     (21, "insufficient")],
)
def test_bad_scrip_amounts_are_refused_and_change_nothing(amount, code):
    ledger = two_accounts()
    with pytest.raises(Refusal) as e:
        ledger.transfer_scrip("a", "b", amount)
    assert e.value.code == code
    assert repr(amount) in e.value.reason or str(amount) in e.value.reason or "insufficient" in e.value.reason
    assert ledger.scrip == {"a": 20, "b": 5}


def test_scrip_to_unknown_or_self_is_refused():
    ledger = two_accounts()
    with pytest.raises(Refusal, match="unknown recipient 'nobody'"):
        ledger.transfer_scrip("a", "nobody", 1)
    with pytest.raises(Refusal, match="yourself"):
        ledger.transfer_scrip("a", "a", 1)
    assert ledger.scrip == {"a": 20, "b": 5}


def test_check_helpers():
    assert check_scrip(3) == 3
    for bad in (0, -3, 3.0, False, "3"):
        with pytest.raises(Refusal):
            check_scrip(bad)
    assert check_quantity(2) == 2.0
    for bad in (0, -1.0, math.inf, math.nan, True, "1", None):
        with pytest.raises(Refusal):
            check_quantity(bad)


def test_rescue_comes_from_a_positive_balance_and_is_clamped_at_capacity():
    ledger = two_accounts(cap_a=10.0, cap_b=10.0)
    ledger.buckets["b"].spend(2.0, 0.0)  # b at 8 of 10: room for 2
    credited = ledger.transfer_compute("a", "b", 5.0, 0.0)
    assert credited == 2.0
    assert ledger.buckets["b"].balance == 10.0
    assert ledger.buckets["a"].balance == 8.0  # the other 3 stayed with the sender


def test_rescue_of_a_debtor_pays_the_debt():
    ledger = two_accounts()
    ledger.buckets["b"].spend(16.0, 0.0)  # b at -6
    assert ledger.transfer_compute("a", "b", 9.0, 0.0) == 9.0
    assert ledger.buckets["b"].balance == 3.0 and ledger.buckets["a"].balance == 1.0


def test_rescue_needs_a_positive_balance_covering_the_amount():
    ledger = two_accounts()
    ledger.buckets["a"].spend(12.0, 0.0)  # a in debt: nothing to give
    before = (ledger.buckets["a"].balance, ledger.buckets["b"].balance)
    with pytest.raises(Refusal) as e:
        ledger.transfer_compute("a", "b", 1.0, 0.0)
    assert e.value.code == "insufficient"
    with pytest.raises(Refusal):
        ledger.transfer_compute("b", "a", 10.5, 0.0)  # b has 10
    with pytest.raises(Refusal):
        ledger.transfer_compute("b", "b", 1.0, 0.0)
    assert (ledger.buckets["a"].balance, ledger.buckets["b"].balance) == before


def test_rescue_counts_accrual_up_to_now():
    ledger = two_accounts()
    ledger.buckets["a"].spend(10.0, 0.0)  # a at 0, rate 1
    with pytest.raises(Refusal):
        ledger.transfer_compute("a", "b", 3.0, 2.0)  # only 2 accrued by t=2
    ledger.buckets["b"].spend(10.0, 0.0)
    assert ledger.transfer_compute("a", "b", 3.0, 3.0) == 3.0
    assert ledger.buckets["a"].balance == pytest.approx(0.0)


def test_rate_transfer_conserves_the_total_exactly_and_accrues_first():
    ledger = two_accounts()
    ledger.buckets["a"].spend(10.0, 0.0)
    ledger.buckets["b"].spend(10.0, 0.0)
    for _ in range(10):
        ledger.transfer_rate("a", "b", 0.1, 1.0)  # 0.1 has no exact float form
    assert ledger.rate_micro == {"a": 0, "b": 3 * MICRO}
    assert ledger.buckets["a"].rate == 0.0 and ledger.buckets["b"].rate == 3.0
    # Accrued at the old rates up to t=1, then the new ones.
    assert ledger.buckets["a"].balance == pytest.approx(1.0)
    assert ledger.buckets["b"].accrue(2.0) == pytest.approx(2.0 + 3.0)
    assert all_true(ledger.invariants())
    with pytest.raises(Refusal, match="insufficient rate"):
        ledger.transfer_rate("a", "b", 0.5, 2.0)
    with pytest.raises(Refusal, match="smallest unit"):
        ledger.transfer_rate("b", "a", 1e-9, 2.0)
    assert ledger.rate_micro == {"a": 0, "b": 3 * MICRO}


def test_open_account_refuses_duplicates_and_bad_scrip():
    ledger = two_accounts()
    with pytest.raises(Refusal, match="already exists"):
        ledger.open_account("a", scrip=1, rate=0.0, capacity=1.0, now=0.0, disk_quota=1)
    with pytest.raises(Refusal):
        ledger.open_account("c", scrip=-1, rate=0.0, capacity=1.0, now=0.0, disk_quota=1)
    assert sorted(ledger.scrip) == ["a", "b"] and ledger.initial_scrip == 25


def test_hold_and_release_keep_conservation():
    ledger = two_accounts()
    ledger.hold("a", 8, "oracle")
    assert ledger.scrip["a"] == 12 and ledger.held == {"oracle": 8}
    assert all_true(ledger.invariants())
    with pytest.raises(Refusal):
        ledger.release("oracle", 9, "b")
    ledger.release("oracle", 8, "b")
    assert ledger.scrip["b"] == 13 and ledger.held_total == 0 and all_true(ledger.invariants())


def test_mint_counts_toward_conservation():
    ledger = two_accounts()
    ledger.mint("b", 4)
    assert ledger.minted == 4 and ledger.scrip_supply == 29 and all_true(ledger.invariants())
    with pytest.raises(Refusal):
        ledger.mint("b", -1)
    with pytest.raises(Refusal):
        ledger.mint("nobody", 1)
    assert ledger.minted == 4


def test_invariants_catch_a_broken_ledger():
    ledger = two_accounts()
    ledger.scrip["a"] += 1  # scrip from nowhere
    assert ledger.invariants()["scrip_conserved"] is False
    ledger = two_accounts()
    ledger.rate_micro["a"] += 1
    assert ledger.invariants()["rate_conserved"] is False
    ledger = two_accounts()
    ledger.scrip["a"], ledger.scrip["b"] = -1, 26
    inv = ledger.invariants()
    assert inv["scrip_conserved"] is True and inv["scrip_non_negative"] is False


# -- spawning through the world -------------------------------------------------------------------


def test_spawn_moves_scrip_and_rate_from_the_parent():
    world = make_world([{"scrip": 10, "rate": 2.0}], compute={"total_rate": 5.0})
    total_before = world.ledger.scrip_supply
    r = world.invoke("ledger", "spawn", principal="a001", brain="test_script", rate=0.5, scrip=4,
                     capacity=3.0, params={"tag": "kid"}, agent_id="kid")
    assert r.ok, r.error
    assert r.value == {"agent_id": "kid"}
    ledger = world.ledger
    assert ledger.scrip["a001"] == 6 and ledger.scrip["kid"] == 4
    assert ledger.buckets["a001"].rate == 1.5 and ledger.buckets["kid"].rate == 0.5
    assert ledger.buckets["kid"].capacity == 3.0
    assert ledger.scrip_supply == total_before and ledger.initial_scrip == total_before
    assert world.agents["kid"].parent == "a001"
    assert world.agents["kid"].config == {"brain": "test_script", "params": {"tag": "kid"}, "think_delay": 0.0}
    assert world.artifacts.get("config:kid").owner == "kid"
    assert "kid" in world.live_ids
    assert world.bus.counts.get("agent_spawned") == 1
    assert all_true(world.invariants())


@pytest.mark.parametrize(
    "args, fragment",
    [
        ({"brain": "test_script", "rate": 5.0}, "insufficient rate"),
        ({"brain": "test_script", "rate": 0.5, "scrip": 11}, "insufficient scrip"),
        ({"brain": "test_script", "rate": 0.5, "scrip": -1}, "scrip must be"),
        ({"brain": "test_script", "rate": 0.5, "scrip": 1.5}, "scrip must be"),
        ({"brain": "test_script", "rate": 0}, "rate must be"),
        ({"brain": "test_script", "rate": True}, "rate must be"),
        ({"brain": "no_such_brain", "rate": 0.5}, "unknown brain 'no_such_brain'"),
        ({"brain": "test_script", "rate": 0.5, "params": {"bogus": 1}}, "bogus"),
        ({"brain": "test_script", "rate": 0.5, "params": [1]}, "params must be a table"),
        ({"brain": "test_script", "rate": 0.5, "agent_id": "a001"}, "already taken"),
        ({"brain": "test_script", "rate": 0.5, "agent_id": "ledger"}, "already taken"),
        ({"brain": "test_script", "rate": 0.5, "agent_id": "1bad id"}, "invalid agent id"),
        ({"brain": "test_script", "rate": 0.5, "capacity": -1}, "capacity must be"),
    ],
)
def test_refused_spawn_changes_nothing(args, fragment):
    world = make_world([{"scrip": 10, "rate": 2.0}], compute={"total_rate": 5.0})
    before = state(world)
    r = world.invoke("ledger", "spawn", principal="a001", **args)
    assert not r.ok
    assert fragment in r.error
    assert state(world) == before


def test_spawn_with_a_rate_below_the_smallest_unit_changes_nothing():
    """Found by this suite: the agent was created before the rate was refused."""
    world = make_world([{"scrip": 10, "rate": 2.0}], compute={"total_rate": 5.0})
    before = state(world)
    r = world.invoke("ledger", "spawn", principal="a001", brain="test_script", rate=1e-9)
    assert not r.ok and "smallest unit" in r.error
    assert state(world) == before  # no half-made agent left behind
