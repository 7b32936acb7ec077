"""The market (SPEC §5): escrow, and races between buyers of one listing.

Races two ways: agents whose (async) brain looks at the open listing, yields so every other
buyer looks too, then buys, all at the same world instant under the virtual clock; and many
concurrent tasks calling `world.invoke` after a checkpoint. Either way exactly one purchase
happens: one owner change, one payment, the seller paid once, the rest refused with a reason.
"""

from __future__ import annotations

import anyio
import pytest
from econ import call, economy_state, ok
from ecotest import PARK, all_true, make_world, run_world
from pydantic import Field

from engine.actions import Invoke, Result, Sleep
from engine.brains import register
from engine.brains.base import Brain, BrainParams
from engine.events import ArtifactTransferred, ListingSold

PRICE = 7
SAW_OPEN: dict[str, bool] = {}
RESULTS: dict[str, Result] = {}


@register
class Racer(Brain):
    """Buys one listing once: looks, yields (everyone else looks), buys, then parks."""

    name = "eco_racer"
    is_async = True

    class Params(BrainParams):
        think_cost: float = Field(0.0, ge=0)
        listing: str = "listing-1"

    def __init__(self, params, rng) -> None:
        super().__init__(params, rng)
        self.tried = False

    async def decide(self, view):
        if self.tried:
            RESULTS.setdefault(view.id, view.last_result)
            return Sleep(seconds=PARK)
        self.tried = True
        SAW_OPEN[view.id] = any(x.id == self.params.listing for x in view.listings())
        await anyio.lowlevel.checkpoint()  # the race: every other buyer looks before anyone buys
        return Invoke("market", "buy", {"listing": self.params.listing})


def race_world(n: int, brain: str = "test_script"):
    world = make_world(
        [{"prefix": "s", "scrip": 10}, {"prefix": "b", "count": n, "scrip": 20, "brain": brain}],
        oracle={"resolution_interval": 1e7},
    )
    world.artifacts.create("s001", "data", "a painting of the ledger", 0.0, "painting")
    assert ok(call(world, "s001", "market", "list", {"artifact": "painting", "price": PRICE})) == {"listing": "listing-1"}
    return world


def check_one_sale(world, n: int, results: dict[str, Result]) -> None:
    buyers = [f"b{i:03d}" for i in range(1, n + 1)]
    assert set(results) == set(buyers)
    winners = [b for b, r in results.items() if r.ok]
    assert len(winners) == 1, {b: r for b, r in results.items()}
    winner = winners[0]
    assert results[winner].value == {"artifact": "painting", "paid": PRICE}
    for b, r in results.items():
        if b != winner:
            assert r.code == "closed" and r.error == "listing listing-1 is sold", r
    ledger = world.ledger
    assert world.artifacts.get("painting").owner == winner
    assert ledger.scrip["s001"] == 10 + PRICE  # paid once
    assert ledger.scrip[winner] == 20 - PRICE
    assert all(ledger.scrip[b] == 20 for b in buyers if b != winner)
    assert world.market.sold == 1 and world.mechanisms["listing_sold"] == 1
    assert world.bus.counts["listing_sold"] == 1
    assert world.market.open == {} and [c.sold_to for c in world.market.closed] == [winner]
    assert sum(ledger.scrip.values()) == ledger.initial_scrip
    assert all_true(world.invariants()), world.invariants()


@pytest.mark.anyio
@pytest.mark.parametrize("n", [2, 50])
async def test_agents_racing_for_one_listing_exactly_one_buys(n):
    SAW_OPEN.clear()
    RESULTS.clear()
    world = race_world(n, brain="eco_racer")
    moves: list[ArtifactTransferred] = []
    sales: list[ListingSold] = []
    world.bus.add_hook(lambda ev: moves.append(ev) if type(ev) is ArtifactTransferred else None)
    world.bus.add_hook(lambda ev: sales.append(ev) if type(ev) is ListingSold else None)
    await run_world(world, 5.0)
    # Every buyer saw the listing open: they really raced, at one instant.
    assert SAW_OPEN == {f"b{i:03d}": True for i in range(1, n + 1)}
    assert world.clock.now() == 5.0
    check_one_sale(world, n, RESULTS)
    assert [(m.frm, m.to) for m in moves] == [("market", sales[0].buyer)]  # one owner change
    assert len(sales) == 1 and sales[0].t == 0.0 and sales[0].price == PRICE


@pytest.mark.anyio
@pytest.mark.parametrize("n", [2, 50])
async def test_concurrent_invokes_for_one_listing_exactly_one_buys(n):
    world = race_world(n)
    results: dict[str, Result] = {}
    looked: list[bool] = []

    async def buyer(who: str) -> None:
        looked.append("listing-1" in world.market.open)
        await anyio.lowlevel.checkpoint()
        results[who] = world.invoke("market", "buy", principal=who, listing="listing-1")

    async with anyio.create_task_group() as tg:
        for i in range(1, n + 1):
            tg.start_soon(buyer, f"b{i:03d}")
    assert looked == [True] * n
    check_one_sale(world, n, results)


def test_restricted_listing_only_the_named_buyer_may_buy():
    world = race_world(3)
    ok(call(world, "s001", "market", "cancel", {"listing": "listing-1"}))
    ok(call(world, "s001", "market", "list", {"artifact": "painting", "price": 4, "buyer": "b002"}))
    before = economy_state(world)
    r = call(world, "b001", "market", "buy", {"listing": "listing-2"})
    assert not r.ok and r.code == "forbidden" and r.error == "listing-2 is reserved for b002"
    assert economy_state(world) == before
    assert ok(call(world, "b002", "market", "buy", {"listing": "listing-2"})) == {"artifact": "painting", "paid": 4}
    assert world.artifacts.get("painting").owner == "b002"
    assert (world.ledger.scrip["s001"], world.ledger.scrip["b002"]) == (14, 16)
    assert all_true(world.invariants())


def test_cancel_returns_the_artifact_and_closes_the_listing():
    world = race_world(2)
    ledger = world.ledger
    size = world.artifacts.get("painting").size
    assert world.artifacts.get("painting").owner == "market"
    assert ledger.disk_used["s001"] == 0 and ledger.disk_used["market"] == size
    listed = ok(call(world, "b001", "market", "listings", {}))
    assert [(x["id"], x["seller"], x["artifact_id"], x["price"], x["status"]) for x in listed] == [
        ("listing-1", "s001", "painting", PRICE, "open")]
    r = call(world, "b001", "market", "cancel", {"listing": "listing-1"})
    assert not r.ok and r.code == "not_owner" and "s001's listing" in r.error
    assert ok(call(world, "s001", "market", "cancel", {"listing": "listing-1"})) is None
    assert world.artifacts.get("painting").owner == "s001"
    assert ledger.disk_used["s001"] == size and ledger.disk_used["market"] == 0
    assert ok(call(world, "b001", "market", "listings", {})) == []
    r = call(world, "b001", "market", "buy", {"listing": "listing-1"})
    assert not r.ok and r.code == "closed" and r.error == "listing listing-1 is cancelled"
    r = call(world, "s001", "market", "cancel", {"listing": "listing-1"})
    assert not r.ok and r.error == "listing listing-1 is cancelled"
    assert ledger.scrip["s001"] == 10 and ledger.scrip["b001"] == 20
    assert world.market.sold == 0 and world.mechanisms["listing_sold"] == 0
    assert all_true(world.invariants())


def test_buying_your_own_listing_is_refused():
    world = race_world(1)
    before = economy_state(world)
    r = call(world, "s001", "market", "buy", {"listing": "listing-1"})
    assert not r.ok and r.code == "invalid" and "your own listing" in r.error
    assert economy_state(world) == before


def test_buying_without_enough_scrip_changes_nothing():
    world = race_world(1)
    ok(call(world, "b001", "ledger", "transfer", {"to": "s001", "amount": 14}))  # b001 keeps 6 < 7
    before = economy_state(world)
    r = call(world, "b001", "market", "buy", {"listing": "listing-1"})
    assert not r.ok and r.code == "insufficient" and r.error == "insufficient scrip: have 6, need 7"
    assert economy_state(world) == before
    assert "listing-1" in world.market.open


def test_a_sold_listing_cannot_be_bought_or_cancelled_again():
    world = race_world(2)
    ok(call(world, "b001", "market", "buy", {"listing": "listing-1"}))
    before = economy_state(world)
    for who, method in (("b002", "buy"), ("s001", "cancel"), ("b001", "buy")):
        r = call(world, who, "market", method, {"listing": "listing-1"})
        assert not r.ok and r.code == "closed" and r.error == "listing listing-1 is sold", (who, method, r)
    assert economy_state(world) == before


def test_a_free_listing_moves_the_artifact_and_no_scrip():
    world = race_world(1)
    ok(call(world, "s001", "market", "cancel", {"listing": "listing-1"}))
    ok(call(world, "s001", "market", "list", {"artifact": "painting", "price": 0}))
    assert ok(call(world, "b001", "market", "buy", {"listing": "listing-2"})) == {"artifact": "painting", "paid": 0}
    assert world.artifacts.get("painting").owner == "b001"
    assert (world.ledger.scrip["s001"], world.ledger.scrip["b001"]) == (10, 20)
    assert all_true(world.invariants())


def test_the_buyer_of_an_artifact_can_resell_it():
    world = race_world(2)
    ok(call(world, "b001", "market", "buy", {"listing": "listing-1"}))
    ok(call(world, "b001", "market", "list", {"artifact": "painting", "price": 11}))
    ok(call(world, "b002", "market", "buy", {"listing": "listing-2"}))
    assert world.artifacts.get("painting").owner == "b002"
    assert [world.ledger.scrip[p] for p in ("s001", "b001", "b002")] == [17, 20 - 7 + 11, 20 - 11]
    assert world.market.sold == 2
    assert all_true(world.invariants())


def test_a_listing_is_public_and_filtered_by_kind():
    world = race_world(1)
    ok(call(world, "b001", "rights", "slice_rate", {"amount": 0.25}))
    slice_id = next(a.id for a in world.artifacts.by_id.values() if a.kind == "rate")
    ok(call(world, "b001", "market", "list", {"artifact": slice_id, "price": 3}))
    assert [x["artifact_id"] for x in ok(call(world, "s001", "market", "listings", {"kind": "rate"}))] == [slice_id]
    assert [x["artifact_id"] for x in ok(call(world, "s001", "market", "listings", {"kind": "data"}))] == ["painting"]
    assert len(ok(call(world, "s001", "market", "listings", {}))) == 2


def test_giving_an_artifact_to_the_market_outside_a_listing_is_refused():
    world = make_world([{"scrip": 10}], oracle={"resolution_interval": 1e7})
    world.artifacts.create("a001", "data", "mine", 0.0, "mine")
    before = economy_state(world)
    r = call(world, "a001", "ledger", "transfer_artifact", {"artifact": "mine", "to": "market"})
    assert not r.ok and "market" in r.error
    assert economy_state(world) == before


def test_a_buyer_without_disk_room_is_refused_and_nothing_changes():
    world = make_world([{"count": 2, "scrip": 100}], agents_policy={"disk_quota": 20},
                       oracle={"resolution_interval": 1e7})
    world.artifacts.create("a001", "data", "x" * 15, 0.0, "big")
    world.artifacts.create("a002", "data", "y" * 10, 0.0, "mid")
    ok(call(world, "a001", "market", "list", {"artifact": "big", "price": 1}))
    before = economy_state(world)
    r = call(world, "a002", "market", "buy", {"listing": "listing-1"})
    assert not r.ok and r.code == "quota" and r.error == "no disk room for big: 15 bytes, 10 free"
    assert economy_state(world) == before
