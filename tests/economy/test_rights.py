"""Tradeable rights (SPEC §6): config rights and rate rights.

A config right sold through the market makes the agent follow the buyer's configuration from
its next turn; configuring without the right is refused with the owner named. Moving rate
(plain `transfer_rate`, or a rate slice given or sold) changes both buckets' accrual from that
instant; slices split and dissolve; plain rate transfers cannot take rate that backs slices.
"""

from __future__ import annotations

import pytest
from econ import call, economy_state, ok
from ecotest import SCRIPTS, TURNS, all_true, make_world, run_world

from engine.actions import Sleep
from engine.events import ConfigChanged, ScripTransferred
from engine.ledger import MICRO


def rights_world(**overrides):
    return make_world([{"count": 3, "scrip": 50, "rate": 1.0, "capacity": 1e6}],
                      oracle={"resolution_interval": 1e7}, **overrides)


# -- config rights ---------------------------------------------------------------------------------

def test_configuring_without_the_config_right_is_refused_naming_the_owner():
    world = rights_world()
    before = economy_state(world)
    for who in ("a002", "operator"):
        r = call(world, who, "rights", "configure", {"agent": "a001", "brain": "boltzmann"})
        assert not r.ok and r.code == "not_owner"
        assert r.error == f"cannot configure a001: its config right is owned by a001, not {who}"
    assert economy_state(world) == before
    assert ok(call(world, "a003", "rights", "owner", {"agent": "a001"})) == {
        "agent": "a001", "config_right": "config:a001", "owner": "a001"}


@pytest.mark.anyio
async def test_after_a_config_right_is_sold_the_agent_follows_the_buyers_config_next_turn():
    world = rights_world()
    ledger = world.ledger
    SCRIPTS["a001"] = lambda view, brain: Sleep(seconds=10)  # a turn every 10 s
    results: dict[str, object] = {}
    changes: list[ConfigChanged] = []
    gifts: list[ScripTransferred] = []
    world.bus.add_hook(lambda ev: changes.append(ev) if type(ev) is ConfigChanged else None)
    world.bus.add_hook(lambda ev: gifts.append(ev) if type(ev) is ScripTransferred else None)

    def record(key, who, method, args):
        return lambda: results.__setitem__(key, call(world, who, *method.split("."), args))

    new_config = {"agent": "a001", "brain": "boltzmann", "params": {"think_cost": 0.0, "when_broke": "sleep"}}
    schedule = [
        (4.0, record("early", "a002", "rights.configure", new_config)),
        (5.0, record("list", "a001", "market.list", {"artifact": "config:a001", "price": 7})),
        (6.0, record("while_listed", "a001", "rights.configure", {"agent": "a001", "think_delay": 1.0})),
        (12.0, record("buy", "a002", "market.buy", {"listing": "listing-1"})),
        (12.0, record("old_owner", "a001", "rights.configure", {"agent": "a001", "think_delay": 1.0})),
        (13.0, record("configure", "a002", "rights.configure", new_config)),
        (13.0, record("owner", "a003", "rights.owner", {"agent": "a001"})),
    ]
    await run_world(world, 30.0, schedule)

    assert results["early"].error == "cannot configure a001: its config right is owned by a001, not a002"
    assert results["list"].ok
    assert results["while_listed"].error == "cannot configure a001: its config right is owned by market, not a001"
    assert results["buy"].value == {"artifact": "config:a001", "paid": 7}
    assert results["old_owner"].error == "cannot configure a001: its config right is owned by a002, not a001"
    assert results["configure"].ok
    assert results["owner"].value["owner"] == "a002"
    assert [(c.t, c.agent_id, c.by) for c in changes] == [(13.0, "a001", "a002")]
    # Until the change it ran its scripted brain at 0 and 10; its next turn (20) is the
    # buyer's choice: boltzmann gives its scrip away one unit at a time, at t = 20.
    assert [(t.t, t.brain) for t in TURNS["a001"]] == [(0.0, "test_script"), (10.0, "test_script")]
    mine = [g for g in gifts if g.frm == "a001"]
    assert mine and all(g.t == 20.0 and g.amount == 1 for g in mine)
    assert len(mine) == 50 + 7  # it had 50, plus the 7 the sale paid it
    assert ledger.scrip["a001"] == 0
    assert world.agents["a001"].config["brain"] == "boltzmann"
    assert world.mechanisms["config_right_changed_hands"] == 1 and world.mechanisms["config_changed"] == 1
    # Its balances are its own: the buyer controls the brain, not the money it holds.
    assert ledger.scrip["a002"] + ledger.scrip["a003"] == 50 - 7 + 50 + 57
    assert all_true(world.invariants())


def test_the_config_right_can_be_given_and_the_new_owner_changes_the_think_delay():
    world = rights_world()
    ok(call(world, "a001", "ledger", "transfer_artifact", {"artifact": "config:a001", "to": "operator"}))
    assert ok(call(world, "operator", "rights", "configure", {"agent": "a001", "think_delay": 2.5}))["version"] == 2
    assert world.agents["a001"].config_artifact.content["think_delay"] == 2.5
    assert ok(call(world, "a002", "rights", "rights", {}))["config"] == {"a001": "operator", "a002": "a002", "a003": "a003"}


# -- rate rights ------------------------------------------------------------------------------------

def drained(world, *agents):
    """Empty the agents' buckets at t = now so that accrual is visible (they start full)."""
    now = world.clock.now()
    for a in agents:
        b = world.ledger.buckets[a]
        b.spend(b.accrue(now), now)
        assert b.peek(now) == 0.0


def compute(world, who):
    """The compute balance now, as the world reports it."""
    return world.balances(who)["compute"]


def test_transfer_rate_changes_both_buckets_accrual_from_that_instant():
    world = rights_world()
    drained(world, "a001", "a002")
    world.clock.advance(10.0)
    assert compute(world, "a001") == pytest.approx(10.0)
    moved = ok(call(world, "a001", "ledger", "transfer_rate", {"to": "a002", "amount": 0.4}))
    assert moved == {"moved": 0.4}
    assert world.mechanisms["rate_moved"] == 1
    for t, a1, a2 in ((20.0, 10 + 0.6 * 10, 10 + 1.4 * 10), (30.0, 10 + 0.6 * 20, 10 + 1.4 * 20),
                      (110.0, 10 + 0.6 * 100, 10 + 1.4 * 100)):
        world.clock.advance(t - world.clock.now())
        assert compute(world, "a001") == pytest.approx(a1)
        assert compute(world, "a002") == pytest.approx(a2)
    assert (world.ledger.buckets["a001"].rate, world.ledger.buckets["a002"].rate) == (0.6, 1.4)
    assert all_true(world.invariants())


def test_a_rate_slice_given_away_moves_its_rate_from_that_instant():
    world = rights_world()
    made = ok(call(world, "a001", "rights", "slice_rate", {"amount": 0.25}))
    slice_id = made["artifact"]
    assert made["rate"] == 0.25 and world.artifacts.get(slice_id).kind == "rate"
    assert world.ledger.buckets["a001"].rate == 1.0  # the owner of the slice still gets its rate
    drained(world, "a001", "a003")
    world.clock.advance(8.0)
    ok(call(world, "a001", "ledger", "transfer_artifact", {"artifact": slice_id, "to": "a003"}))
    world.clock.advance(4.0)
    assert compute(world, "a001") == pytest.approx(8.0 + 0.75 * 4)
    assert compute(world, "a003") == pytest.approx(8.0 + 1.25 * 4)
    assert world.ledger.sliced_micro == {"a001": 0, "a003": 250_000}
    assert world.mechanisms["rate_moved"] == 1
    assert all_true(world.invariants())


def test_a_rate_slice_sold_through_the_market_moves_its_rate_to_the_buyer():
    world = rights_world()
    slice_id = ok(call(world, "a001", "rights", "slice_rate", {"amount": 0.5}))["artifact"]
    ok(call(world, "a001", "market", "list", {"artifact": slice_id, "price": 6}))
    world.clock.advance(5.0)
    drained(world, "a001", "a002")
    ok(call(world, "a002", "market", "buy", {"listing": "listing-1"}))
    world.clock.advance(10.0)
    rates = {p: world.ledger.buckets[p].rate for p in ("a001", "a002", "market")}
    assert rates == {"a001": 0.5, "a002": 1.5, "market": 0.0}
    assert compute(world, "a001") == pytest.approx(0.5 * 10)
    assert compute(world, "a002") == pytest.approx(1.5 * 10)
    assert (world.ledger.scrip["a001"], world.ledger.scrip["a002"]) == (56, 44)
    assert ok(call(world, "a003", "rights", "rights", {}))["rate_slices"] == [
        {"artifact": slice_id, "owner": "a002", "rate": 0.5}]
    assert all_true(world.invariants())


def test_split_and_dissolve_slices():
    world = rights_world()
    ledger = world.ledger
    whole = ok(call(world, "a001", "rights", "slice_rate", {"amount": 0.6}))["artifact"]
    split = ok(call(world, "a001", "rights", "split", {"artifact": whole, "amount": 0.2}))
    part = split["artifact"]
    assert split == {"artifact": part, "rate": 0.2, "left": 0.4}
    assert world.artifacts.get(whole).content == {"rate": 0.4, "micro": 400_000}
    assert world.artifacts.get(part).content == {"rate": 0.2, "micro": 200_000}
    assert ledger.sliced_micro["a001"] == 600_000 and ledger.rate_micro["a001"] == MICRO
    assert all_true(world.invariants())
    # Give one part away; dissolving it turns it into the receiver's plain rate.
    ok(call(world, "a001", "ledger", "transfer_artifact", {"artifact": part, "to": "a002"}))
    assert ok(call(world, "a002", "rights", "dissolve", {"artifact": part})) == {"rate": 0.2}
    assert part not in world.artifacts
    assert ledger.sliced_micro["a002"] == 0 and ledger.rate_micro["a002"] == 1_200_000
    ok(call(world, "a002", "ledger", "transfer_rate", {"to": "a003", "amount": 1.2}))
    assert ledger.rate_micro["a002"] == 0
    # Dissolving the other frees it for plain transfers by a001.
    r = call(world, "a001", "ledger", "transfer_rate", {"to": "a003", "amount": 0.7})
    assert not r.ok and r.code == "insufficient"
    ok(call(world, "a001", "rights", "dissolve", {"artifact": whole}))
    ok(call(world, "a001", "ledger", "transfer_rate", {"to": "a003", "amount": 0.7}))
    assert ledger.rate_micro["a001"] == 100_000 and ledger.sliced_micro["a001"] == 0  # 1 - 0.2 given - 0.7
    assert [a for a in world.artifacts.by_id.values() if a.kind == "rate"] == []
    assert all_true(world.invariants())


def test_plain_transfer_rate_cannot_take_rate_that_backs_owned_slices():
    world = rights_world()
    ok(call(world, "a001", "rights", "slice_rate", {"amount": 0.7}))
    before = economy_state(world)
    r = call(world, "a001", "ledger", "transfer_rate", {"to": "a002", "amount": 0.31})
    assert not r.ok and r.code == "insufficient"
    assert r.error == "insufficient rate: have 0.3 (the rest backs rate slices you own), need 0.31"
    assert economy_state(world) == before
    # Nor can a new slice take it, nor the operator's set_rate.
    r = call(world, "a001", "rights", "slice_rate", {"amount": 0.31})
    assert not r.ok and "0.3 rate is free to slice" in r.error
    r = call(world, "operator", "ledger", "set_rate", {"agent": "a001", "rate": 0.5})
    assert not r.ok and r.code == "insufficient"
    assert economy_state(world) == before
    ok(call(world, "a001", "ledger", "transfer_rate", {"to": "a002", "amount": 0.3}))
    assert world.ledger.rate_micro["a001"] == 700_000
    assert all_true(world.invariants())
