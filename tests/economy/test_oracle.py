"""The oracle (SPEC §4), table-driven: every case plays bids, replacements, cancels and
transfers at exact world times, resolves once, and checks EVERY balance afterwards (the
bidders', the UBI recipients', what was minted to owners, the oracle's hold back to 0) and
conservation (every world invariant).

World of every case: five agents a001..a005 with 100 scrip each (operator 100, never a UBI
recipient). Each agent owns two data artifacts `<agent>-x` and `<agent>-y` with distinct
content. Scores come from a `FixedScorer` (50 unless the case says otherwise); with the
default mint ratio of 10 a score of 50 mints 5.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pytest
from econ import FixedScorer, call, ok
from ecotest import SCRIPTS, all_true, make_world, run_world, steps

from engine.actions import Invoke, Sleep
from engine.events import BidCancelled, OracleResolved, ScripMinted
from engine.scoring import DistinctivenessScorer, FailingScorer

AGENTS = ["a001", "a002", "a003", "a004", "a005"]
START = 100


def auction_world(slots: int = 1, min_bid: int = 1, mint_ratio: float = 10.0, scorer: Any = None):
    world = make_world(
        [{"count": len(AGENTS), "scrip": START}],
        oracle={"slots": slots, "min_bid": min_bid, "mint_ratio": mint_ratio, "resolution_interval": 1e7},
    )
    for agent in AGENTS:
        for name in ("x", "y"):
            world.artifacts.create(agent, "data", f"{agent} wrote {name}: {agent}{name} unique", 0.0, f"{agent}-{name}")
    world.oracle.scorer = scorer if scorer is not None else FixedScorer()
    return world


def at(world, t: float) -> None:
    now = world.clock.now()
    assert t >= now, "ops must be in time order"
    if t > now:
        world.clock.advance(t - now)


def play(world, ops) -> None:
    """ops: (t, "bid", who, artifact, amount) | (t, "cancel", who, artifact)
    | (t, "give", who, artifact, to) | (t, "list", who, artifact, price)."""
    for op in ops:
        t, kind, who, art, *rest = op
        at(world, t)
        if kind == "bid":
            r = call(world, who, "oracle", "bid", {"artifact": art, "amount": rest[0]})
            assert r.ok and r.value["held"] == rest[0], r
        elif kind == "cancel":
            ok(call(world, who, "oracle", "cancel", {"artifact": art}))
        elif kind == "give":
            ok(call(world, who, "ledger", "transfer_artifact", {"artifact": art, "to": rest[0]}))
        elif kind == "list":
            ok(call(world, who, "market", "list", {"artifact": art, "price": rest[0]}))
        else:  # pragma: no cover
            raise AssertionError(kind)


@dataclass
class Case:
    name: str
    ops: list
    winners: list[str]  # winning artifacts, in rank order
    price: int | None
    scrip: dict[str, int]  # every agent's scrip after the resolution
    mints: dict[str, int] = field(default_factory=dict)  # artifact -> minted to its owner
    ubi: tuple[int, int, int, int] = (0, 0, 0, 0)  # pool, recipients, share, remainder
    slots: int = 1
    min_bid: int = 1
    mint_ratio: float = 10.0
    scores: dict[str, Any] = field(default_factory=dict)
    scorer: Any = None
    void: list[str] = field(default_factory=list)  # bidders whose bid was void
    failed: list[str] = field(default_factory=list)  # winning artifacts whose scoring failed


def s(**kw: int) -> dict[str, int]:
    """Every agent's scrip: START unless given."""
    return {a: kw.get(a, START) for a in AGENTS}


CASES = [
    Case("no_bids", [], [], None, s()),
    # One bid pays min_bid (2) and gets 10 - 2 back; the price, 2, goes one unit each to the
    # first two non-winners in id order (share 0, remainder 2).
    Case("one_bid_pays_min_bid", [(1, "bid", "a001", "a001-x", 10)], ["a001-x"], 2,
         s(a001=100 - 2 + 5, a002=101, a003=101), {"a001-x": 5}, (2, 4, 0, 2), min_bid=2),
    # Equal amounts: the earlier bid wins, pays the second amount (7).
    Case("tie_earlier_time_wins",
         [(1, "bid", "a002", "a002-x", 7), (2, "bid", "a001", "a001-x", 7)],
         ["a002-x"], 7, s(a001=102, a002=100 - 7 + 5, a003=102, a004=102, a005=101), {"a002-x": 5}, (7, 4, 1, 3)),
    # Same time too: the lower bid id (placed first) wins.
    Case("tie_same_time_lower_bid_id_wins",
         [(1, "bid", "a003", "a003-x", 7), (1, "bid", "a001", "a001-x", 7)],
         ["a003-x"], 7, s(a001=102, a002=102, a003=98, a004=102, a005=101), {"a003-x": 5}, (7, 4, 1, 3)),
    Case("k1_more_bids_than_slots",
         [(1, "bid", "a001", "a001-x", 10), (1, "bid", "a002", "a002-x", 6), (1, "bid", "a003", "a003-x", 4)],
         ["a001-x"], 6, s(a001=100 - 6 + 5, a002=102, a003=102, a004=101, a005=101), {"a001-x": 5}, (6, 4, 1, 2)),
    Case("k3_fewer_bids_than_slots",
         [(1, "bid", "a001", "a001-x", 10), (1, "bid", "a002", "a002-x", 5)],
         ["a001-x", "a002-x"], 2, s(a001=100 - 2 + 5, a002=100 - 2 + 3, a003=102, a004=101, a005=101),
         {"a001-x": 5, "a002-x": 3}, (4, 3, 1, 1), slots=3, min_bid=2, scores={"a002-x": 30}),
    Case("k3_as_many_bids_as_slots",
         [(1, "bid", "a001", "a001-x", 10), (1, "bid", "a002", "a002-x", 8), (1, "bid", "a003", "a003-x", 5)],
         ["a001-x", "a002-x", "a003-x"], 2, s(a001=103, a002=103, a003=103, a004=103, a005=103),
         {"a001-x": 5, "a002-x": 5, "a003-x": 5}, (6, 2, 3, 0), slots=3, min_bid=2),
    # Price = the 4th highest amount (6); winners get bid - 6 back, losers everything.
    Case("k3_more_bids_than_slots",
         [(1, "bid", "a001", "a001-x", 10), (1, "bid", "a002", "a002-x", 9), (1, "bid", "a003", "a003-x", 8),
          (1, "bid", "a004", "a004-x", 6), (1, "bid", "a005", "a005-x", 3)],
         ["a001-x", "a002-x", "a003-x"], 6, s(a001=99, a002=99, a003=99, a004=109, a005=109),
         {"a001-x": 5, "a002-x": 5, "a003-x": 5}, (18, 2, 9, 0), slots=3),
    # Four equal amounts for three slots: time, then bid id, decide who wins.
    Case("k3_ties_at_the_boundary",
         [(0, "bid", "a002", "a002-x", 8), (0, "bid", "a003", "a003-x", 2), (1, "bid", "a005", "a005-x", 8),
          (1, "bid", "a004", "a004-x", 8), (2, "bid", "a001", "a001-x", 8)],
         ["a002-x", "a005-x", "a004-x"], 8, s(a001=112, a002=97, a003=112, a004=97, a005=97),
         {"a002-x": 5, "a005-x": 5, "a004-x": 5}, (24, 2, 12, 0), slots=3),
    # Two artifacts of one bidder both win.
    Case("k3_one_bidder_two_winning_artifacts",
         [(1, "bid", "a001", "a001-x", 9), (1, "bid", "a001", "a001-y", 8), (1, "bid", "a002", "a002-x", 7),
          (1, "bid", "a003", "a003-x", 4)],
         ["a001-x", "a001-y", "a002-x"], 4, s(a001=100 - 8 + 5 + 2, a002=100 - 4 + 5, a003=104, a004=104, a005=104),
         {"a001-x": 5, "a001-y": 2, "a002-x": 5}, (12, 3, 4, 0), slots=3, scores={"a001-y": 20}),
    # A replacement raises the hold (5 -> 9) and wins at the second amount.
    Case("replaced_bid_up",
         [(1, "bid", "a001", "a001-x", 5), (1, "bid", "a002", "a002-x", 7), (2, "bid", "a001", "a001-x", 9)],
         ["a001-x"], 7, s(a001=98, a002=102, a003=102, a004=102, a005=101), {"a001-x": 5}, (7, 4, 1, 3)),
    # A replacement lowers the hold (9 -> 6) and sets the price.
    Case("replaced_bid_down",
         [(1, "bid", "a001", "a001-x", 9), (2, "bid", "a002", "a002-x", 7), (3, "bid", "a001", "a001-x", 6)],
         ["a002-x"], 6, s(a001=102, a002=99, a003=102, a004=101, a005=101), {"a002-x": 5}, (6, 4, 1, 2)),
    # Re-bidding the same amount is a new bid: it loses the tie it used to win.
    Case("replacement_is_a_new_bid_for_ties",
         [(1, "bid", "a001", "a001-x", 7), (2, "bid", "a002", "a002-x", 7), (3, "bid", "a001", "a001-x", 7)],
         ["a002-x"], 7, s(a001=102, a002=98, a003=102, a004=102, a005=101), {"a002-x": 5}, (7, 4, 1, 3)),
    Case("replacement_at_the_same_instant_takes_a_new_bid_id",
         [(1, "bid", "a001", "a001-x", 7), (1, "bid", "a002", "a002-x", 7), (1, "bid", "a001", "a001-x", 7)],
         ["a002-x"], 7, s(a001=102, a002=98, a003=102, a004=102, a005=101), {"a002-x": 5}, (7, 4, 1, 3)),
    # A cancelled bid releases its hold and takes no part.
    Case("cancelled_bid",
         [(1, "bid", "a001", "a001-x", 9), (1, "bid", "a002", "a002-x", 7), (2, "cancel", "a001", "a001-x")],
         ["a002-x"], 1, s(a001=101, a002=104), {"a002-x": 5}, (1, 4, 0, 1)),
    Case("all_bids_cancelled",
         [(1, "bid", "a001", "a001-x", 9), (2, "cancel", "a001", "a001-x")], [], None, s()),
    # Scoring fails for one winner: its price is refunded, nothing minted, not in the pool;
    # it still won (no UBI for it).
    Case("scoring_fails_for_one_winner",
         [(1, "bid", "a001", "a001-x", 10), (1, "bid", "a002", "a002-x", 8), (1, "bid", "a003", "a003-x", 4)],
         ["a001-x", "a002-x"], 4, s(a001=100, a002=101, a003=102, a004=101, a005=101), {"a002-x": 5},
         (4, 3, 1, 1), slots=2, scores={"a001-x": "fail"}, failed=["a001-x"]),
    Case("score_out_of_range_is_a_failure",
         [(1, "bid", "a001", "a001-x", 10), (1, "bid", "a002", "a002-x", 6)],
         ["a001-x"], 6, s(), {}, (0, 0, 0, 0), scores={"a001-x": 101}, failed=["a001-x"]),
    Case("failing_scorer_refunds_everyone",
         [(1, "bid", "a001", "a001-x", 10), (1, "bid", "a002", "a002-x", 6), (1, "bid", "a003", "a003-x", 2)],
         ["a001-x", "a002-x"], 2, s(), {}, (0, 0, 0, 0), slots=2, scorer=FailingScorer(),
         failed=["a001-x", "a002-x"]),
    # The pool is shared equally among the non-winners; the remainder goes one unit each
    # in ascending id order, whoever bid (a004 lost and gets no remainder unit).
    Case("ubi_remainder_in_ascending_id_order",
         [(1, "bid", "a005", "a005-x", 10), (1, "bid", "a004", "a004-x", 7)],
         ["a005-x"], 7, s(a001=102, a002=102, a003=102, a004=101, a005=98), {"a005-x": 5}, (7, 4, 1, 3)),
    Case("ubi_pool_smaller_than_recipients",
         [(1, "bid", "a003", "a003-x", 3), (1, "bid", "a002", "a002-x", 3)],
         ["a003-x"], 3, s(a001=101, a002=101, a003=102, a004=101), {"a003-x": 5}, (3, 4, 0, 3)),
    # Everyone won: the pool is shared among all agents (winners included).
    Case("everyone_won_all_share",
         [(1, "bid", a, f"{a}-x", 4) for a in AGENTS],
         [f"{a}-x" for a in AGENTS], 1, s(a001=100 - 1 + 5 + 1, a002=105, a003=105, a004=105, a005=105),
         {f"{a}-x": 5 for a in AGENTS}, (5, 5, 1, 0), slots=5),
    # The artifact changed hands after the bid: the bid is void and fully released.
    Case("void_artifact_given_away",
         [(1, "bid", "a001", "a001-x", 10), (1, "bid", "a002", "a002-x", 6), (2, "give", "a001", "a001-x", "a003")],
         ["a002-x"], 1, s(a001=101, a002=104), {"a002-x": 5}, (1, 4, 0, 1), void=["a001"]),
    Case("void_artifact_listed_on_the_market",
         [(1, "bid", "a001", "a001-x", 10), (1, "bid", "a002", "a002-x", 6), (2, "list", "a001", "a001-x", 50)],
         ["a002-x"], 1, s(a001=101, a002=104), {"a002-x": 5}, (1, 4, 0, 1), void=["a001"]),
    # A void bid does not count towards the price: a002 alone pays min_bid, not 10.
    Case("void_bid_does_not_set_the_price",
         [(1, "bid", "a001", "a001-x", 10), (1, "bid", "a002", "a002-x", 20), (2, "give", "a001", "a001-x", "a004")],
         ["a002-x"], 1, s(a001=101, a002=104), {"a002-x": 5}, (1, 4, 0, 1), void=["a001"]),
    # minted = floor(score / mint_ratio)
    Case("mint_floor", [(1, "bid", "a001", "a001-x", 5)], ["a001-x"], 1, s(a001=100 - 1 + 16, a002=101),
         {"a001-x": 16}, (1, 4, 0, 1), mint_ratio=3.0),
    Case("mint_zero_when_score_below_ratio", [(1, "bid", "a001", "a001-x", 5)], ["a001-x"], 1,
         s(a001=99, a002=101), {"a001-x": 0}, (1, 4, 0, 1), scores={"a001-x": 9}),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_auction(case: Case):
    scorer = case.scorer if case.scorer is not None else FixedScorer(case.scores)
    world = auction_world(case.slots, case.min_bid, case.mint_ratio, scorer)
    minted_events: list[ScripMinted] = []
    voided: list[BidCancelled] = []
    resolved: list[OracleResolved] = []
    world.bus.add_hook(lambda ev: minted_events.append(ev) if type(ev) is ScripMinted else None)
    world.bus.add_hook(lambda ev: voided.append(ev) if type(ev) is BidCancelled and ev.reason.startswith("void") else None)
    world.bus.add_hook(lambda ev: resolved.append(ev) if type(ev) is OracleResolved else None)
    ledger = world.ledger
    play(world, case.ops)

    # Before the resolution: each open bid's amount is held, and only that.
    open_by = {a: 0 for a in AGENTS}
    for bid in world.oracle.bids.values():
        open_by[bid.bidder] += bid.amount
    assert ledger.held.get("oracle", 0) == sum(open_by.values())
    for a in AGENTS:
        assert ledger.scrip[a] == START - open_by[a], a
    assert all_true(world.invariants())

    record = ok(world.invoke("oracle", "resolve_now"))

    assert [w["artifact"] for w in record["winners"]] == case.winners
    assert record["price"] == case.price
    assert {a: ledger.scrip[a] for a in AGENTS} == case.scrip
    assert ledger.scrip["operator"] == 100
    # The oracle holds nothing any more, and has no open bid.
    assert ledger.held.get("oracle", 0) == 0
    assert world.oracle.bids == {} and ok(world.invoke("oracle", "open_bids")) == []
    # Minted to the artifacts' owners, exactly floor(score / ratio) each.
    minted = sum(case.mints.values())
    assert record["minted"] == minted == ledger.minted == world.oracle.minted_total
    assert {w["artifact"]: w["minted"] for w in record["winners"] if w["error"] is None} == case.mints
    assert sorted((e.to, e.amount, e.artifact_id) for e in minted_events) == sorted(
        (art.split("-")[0], m, art) for art, m in case.mints.items() if m
    )
    assert [w["artifact"] for w in record["winners"] if w["error"] is not None] == case.failed
    for w in record["winners"]:
        if w["error"] is not None:
            assert w["paid"] == 0 and w["minted"] == 0 and w["score"] is None
        else:
            assert w["paid"] == case.price
    ubi = record["ubi"]
    assert (ubi["pool"], ubi["recipients"], ubi["share"], ubi["remainder"]) == case.ubi
    # The pool is exactly the prices of the winners that were scored.
    assert ubi["pool"] == case.price * (len(case.winners) - len(case.failed)) if case.winners else ubi["pool"] == 0
    assert sorted(v["bidder"] for v in record["void"]) == sorted(case.void)
    assert sorted(e.bidder for e in voided) == sorted(case.void)
    # Conservation: everything that exists is the initial scrip plus what was minted.
    assert sum(ledger.scrip[a] for a in AGENTS) == START * len(AGENTS) + minted
    assert all_true(world.invariants()), world.invariants()
    # The record is public and the mechanisms were counted.
    assert ok(world.invoke("oracle", "last_resolution")) is record
    assert len(resolved) == 1 and resolved[0].minted == minted
    assert world.mechanisms["resolution"] == (1 if case.winners else 0)
    assert world.mechanisms["mint"] == (1 if minted else 0)
    assert world.mechanisms["ubi"] == (1 if case.ubi[0] else 0)


def test_replacing_a_bid_adjusts_the_hold_up_and_down():
    world = auction_world()
    ledger = world.ledger
    ok(call(world, "a001", "oracle", "bid", {"artifact": "a001-x", "amount": 5}))
    assert (ledger.scrip["a001"], ledger.held["oracle"]) == (95, 5)
    ok(call(world, "a001", "oracle", "bid", {"artifact": "a001-x", "amount": 30}))
    assert (ledger.scrip["a001"], ledger.held["oracle"]) == (70, 30)
    ok(call(world, "a001", "oracle", "bid", {"artifact": "a001-x", "amount": 2}))
    assert (ledger.scrip["a001"], ledger.held["oracle"]) == (98, 2)
    assert len(world.oracle.bids) == 1
    # A raise beyond what it has is refused and leaves the old bid and hold as they were.
    r = call(world, "a001", "oracle", "bid", {"artifact": "a001-x", "amount": 101})
    assert not r.ok and r.code == "insufficient" and "have 98, need 99" in r.error
    assert (ledger.scrip["a001"], ledger.held["oracle"]) == (98, 2)
    assert world.oracle.bids[("a001", "a001-x")].amount == 2
    released = ok(call(world, "a001", "oracle", "cancel", {"artifact": "a001-x"}))
    assert released == {"released": 2}
    assert (ledger.scrip["a001"], ledger.held["oracle"]) == (100, 0)
    r = call(world, "a001", "oracle", "cancel", {"artifact": "a001-x"})
    assert not r.ok and "no open bid" in r.error
    assert all_true(world.invariants())


def test_bids_are_ranked_by_amount_then_time_then_id():
    world = auction_world()
    ops = [(0, "bid", "a003", "a003-x", 5), (1, "bid", "a001", "a001-x", 5), (1, "bid", "a002", "a002-x", 9),
           (1, "bid", "a004", "a004-x", 5), (2, "bid", "a005", "a005-x", 1)]
    play(world, ops)
    ranked = [(b["bidder"], b["amount"], b["t"]) for b in ok(world.invoke("oracle", "open_bids"))]
    assert ranked == [("a002", 9, 1), ("a003", 5, 0), ("a001", 5, 1), ("a004", 5, 1), ("a005", 1, 2)]


@pytest.mark.parametrize(
    "score, ratio, expected",
    [
        (50, 3.0, 16),
        (51, 2.0, 25),
        (9, 10.0, 0),
        (100, 1.0, 100),
        (0, 1.0, 0),
        (99, 0.5, 198),
        (3, 0.3, 10),
        (7, 7.0, 1),
        (100, 0.1, 1000),  # float floor division would give 999 (100 // 0.1 == 999.0)
        (50, 0.1, 500),
    ],
)
def test_minting_is_floor_of_score_over_mint_ratio(score, ratio, expected):
    assert expected == math.floor(score / ratio)  # the spec's formula, as the table states it
    world = auction_world(mint_ratio=ratio, scorer=FixedScorer(default=score))
    play(world, [(1, "bid", "a001", "a001-x", 5)])
    record = ok(world.invoke("oracle", "resolve_now"))
    assert record["minted"] == expected
    assert world.ledger.scrip["a001"] == START - 1 + expected
    assert world.ledger.scrip["a002"] == START + 1  # the price, 1, as UBI
    assert all_true(world.invariants())


def test_an_exact_duplicate_of_a_scored_artifact_scores_zero():
    """The default (distinctiveness) scorer: a copy of an already scored artifact earns
    nothing, but its bidder still pays the price, which goes to the UBI pool."""
    world = auction_world(mint_ratio=1.0, scorer=DistinctivenessScorer())
    text = "a reasonably long original text about ledgers oracles markets and the rights of agents"
    world.artifacts.create("a001", "data", text, 0.0, "orig")
    world.artifacts.create("a002", "data", text, 0.0, "copy")
    ok(call(world, "a001", "oracle", "bid", {"artifact": "orig", "amount": 3}))
    first = ok(world.invoke("oracle", "resolve_now"))
    score = first["winners"][0]["score"]
    assert score > 0 and first["minted"] == score
    assert world.ledger.scrip["a001"] == START - 1 + score
    assert world.ledger.scrip["a002"] == START + 1

    world.clock.advance(60)
    ok(call(world, "a002", "oracle", "bid", {"artifact": "copy", "amount": 4}))
    second = ok(world.invoke("oracle", "resolve_now"))
    assert [(w["artifact"], w["score"], w["minted"], w["paid"]) for w in second["winners"]] == [("copy", 0, 0, 1)]
    assert second["minted"] == 0
    assert world.ledger.scrip["a002"] == START + 1 - 1
    assert world.ledger.scrip["a001"] == START - 1 + score + 1  # the copy's price, as UBI
    assert world.ledger.minted == score
    assert all_true(world.invariants())


def test_a_duplicate_within_one_resolution_scores_zero_for_the_lower_ranked():
    world = auction_world(slots=2, mint_ratio=1.0, scorer=DistinctivenessScorer())
    text = "shared words about compute buckets and scrip and tradeable config rights"
    world.artifacts.create("a001", "data", text, 0.0, "one")
    world.artifacts.create("a002", "data", text, 0.0, "two")
    play(world, [(1, "bid", "a001", "one", 9), (1, "bid", "a002", "two", 8)])
    record = ok(world.invoke("oracle", "resolve_now"))
    scores = {w["artifact"]: w["score"] for w in record["winners"]}
    assert scores["one"] > 0 and scores["two"] == 0
    assert world.ledger.scrip["a002"] == START - 1
    assert world.ledger.scrip["a001"] == START - 1 + scores["one"]
    assert all_true(world.invariants())


def test_every_resolution_is_recorded_and_time_to_next_is_observable():
    world = auction_world()
    r = ok(call(world, "a001", "oracle", "bid", {"artifact": "a001-x", "amount": 3}))
    assert r["resolves_in"] == 1e7
    world.clock.advance(2.5e6)
    r = ok(call(world, "a002", "oracle", "bid", {"artifact": "a002-x", "amount": 3}))
    assert r["resolves_in"] == pytest.approx(7.5e6)
    assert ok(world.invoke("oracle", "last_resolution")) is None
    first = ok(world.invoke("oracle", "resolve_now"))
    second = ok(world.invoke("oracle", "resolve_now"))
    assert (first["index"], second["index"]) == (0, 1)
    assert first["trigger"] == "operator" and first["bids"] == 2 and second["bids"] == 0
    assert [x["index"] for x in world.oracle.resolutions] == [0, 1]


@pytest.mark.anyio
async def test_scheduled_resolutions_run_every_interval_from_world_start():
    """Under the virtual clock, with bids placed by agents at chosen times."""
    world = make_world([{"count": 2, "scrip": 50}], oracle={"resolution_interval": 60.0, "mint_ratio": 10.0})
    world.oracle.scorer = FixedScorer()
    world.artifacts.create("a001", "data", "one", 0.0, "one")
    world.artifacts.create("a002", "data", "two", 0.0, "two")
    SCRIPTS["a001"] = steps(Sleep(seconds=30), Invoke("oracle", "bid", {"artifact": "one", "amount": 4}),
                            Sleep(seconds=60), Invoke("oracle", "bid", {"artifact": "one", "amount": 2}))
    SCRIPTS["a002"] = steps(Sleep(seconds=45), Invoke("oracle", "bid", {"artifact": "two", "amount": 3}))
    await run_world(world, 150)
    times = [r["t"] for r in world.oracle.resolutions]
    assert times == [60.0, 120.0]
    first, second = world.oracle.resolutions
    assert [w["artifact"] for w in first["winners"]] == ["one"] and first["price"] == 3
    assert [w["artifact"] for w in second["winners"]] == ["one"] and second["price"] == 1
    # a001: -3 +5 (first), -1 +5 (second); a002: +3 (UBI), then +1 (UBI)
    assert world.ledger.scrip["a001"] == 50 - 3 + 5 - 1 + 5
    assert world.ledger.scrip["a002"] == 50 + 3 + 1
    assert all_true(world.invariants())
