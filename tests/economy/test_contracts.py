"""Debt contracts (SPEC §7) on the virtual clock.

    owed(t) = principal + floor(principal * rate_per_day * days_active(t)) - repaid

Interest over days, partial repayment, the claim sold mid-life through the market (the next
payment goes to the new holder), automatic collection at the due time (paid in full ->
repaid; short -> defaulted with the outstanding amount recorded and public), a later
repayment of a defaulted loan, decline and cancel releasing the principal, double accept.
"""

from __future__ import annotations

import pytest
from econ import call, economy_state, ok
from ecotest import all_true, make_world, run_world

from engine.events import LoanEvent

DAY = 86_400.0


def loan_world(lender: int = 2000, debtor: int = 3000, buyer: int = 500):
    return make_world(
        [{"prefix": "l", "scrip": lender}, {"prefix": "d", "scrip": debtor}, {"prefix": "h", "scrip": buyer}],
        oracle={"resolution_interval": 1e9},  # no oracle resolutions in the way
        operator={"scrip": 1000},
    )


def offer(world, lender="l001", debtor="d001", principal=1000, rate=0.1, due_in=20 * DAY) -> str:
    value = ok(call(world, lender, "contracts", "offer",
                    {"debtor": debtor, "principal": principal, "rate_per_day": rate, "due_in": due_in}))
    return value["contract"]


def owed(world, cid: str) -> int:
    return ok(call(world, "operator", "contracts", "owed", {"contract": cid}))["owed"]


def content(world, cid: str) -> dict:
    return world.contracts.contracts[cid].content


@pytest.mark.parametrize(
    "principal, rate, days, expected",
    [
        (1000, 0.1, 0.0, 1000),
        (1000, 0.1, 1.0, 1100),
        (1000, 0.1, 2.5, 1250),
        (1000, 0.1, 10.0, 2000),
        (1000, 0.1, 0.5 / 24, 1002),  # half an hour: floor(2.083...)
        (7, 0.3, 1.0, 9),  # floor(2.1)
        (100, 0.0, 5.0, 100),  # no interest
        (3, 1.0, 1 / 3, 4),  # floor(0.999...9 + eps) must be 1, not 0
        (1000, 0.1, 0.0475, 1004),  # floor(4.75), not rounded
        (10, 1.0, 0.35, 13),  # floor(3.5)
    ],
)
def test_owed_is_principal_plus_floored_simple_interest(principal, rate, days, expected):
    world = loan_world()
    cid = offer(world, principal=principal, rate=rate, due_in=30 * DAY)
    ok(call(world, "d001", "contracts", "accept", {"contract": cid}))
    world.clock.advance(days * DAY)
    assert owed(world, cid) == expected


def test_interest_stops_at_the_due_time():
    world = loan_world()
    cid = offer(world, principal=1000, rate=0.1, due_in=2 * DAY)
    ok(call(world, "d001", "contracts", "accept", {"contract": cid}))
    world.clock.advance(2 * DAY)
    assert owed(world, cid) == 1200
    world.clock.advance(5 * DAY)  # no engine task ran to collect: still active, no more interest
    assert content(world, cid)["status"] == "active" and owed(world, cid) == 1200


@pytest.mark.anyio
async def test_loan_lifecycle_interest_partial_repayment_claim_sold_and_collected_at_due():
    world = loan_world()
    ledger = world.ledger
    seen: dict[str, object] = {}
    events: list[LoanEvent] = []
    world.bus.add_hook(lambda ev: events.append(ev) if type(ev) is LoanEvent else None)
    due = 20 * DAY

    def at_start():
        seen["cid"] = cid = offer(world)
        assert (ledger.scrip["l001"], ledger.held["contracts"]) == (1000, 1000)
        assert content(world, cid)["status"] == "offered"
        accepted = ok(call(world, "d001", "contracts", "accept", {"contract": cid}))
        assert accepted == {"contract": cid, "due": due, "owed_at_due": 1000 + 2000}
        assert (ledger.scrip["d001"], ledger.held["contracts"]) == (4000, 0)

    def check(key):
        return lambda: seen.__setitem__(key, owed(world, "loan-1"))

    def repay(amount, key):
        return lambda: seen.__setitem__(key, call(world, "d001", "contracts", "repay",
                                                   {"contract": "loan-1", "amount": amount}))

    def sell_claim():
        ok(call(world, "l001", "market", "list", {"artifact": "loan-1", "price": 400}))
        # While listed, the seller is still the holder: payments would go to l001.
        seen["holder_listed"] = ok(call(world, "h001", "contracts", "owed", {"contract": "loan-1"}))["holder"]
        ok(call(world, "h001", "market", "buy", {"listing": "listing-1"}))
        seen["holder_sold"] = ok(call(world, "h001", "contracts", "owed", {"contract": "loan-1"}))["holder"]

    schedule = [
        (0.0, at_start),
        (1 * DAY, check("day1")),
        (2.5 * DAY, check("day2.5")),
        (2.5 * DAY, repay(300, "repay1")),
        (2.5 * DAY, check("day2.5_after")),
        (3 * DAY, sell_claim),
        (5 * DAY, repay(100, "repay2")),
        (5 * DAY, check("day5")),
        (10 * DAY, check("day10")),
        (due - 1, check("before_due")),
    ]
    await run_world(world, due + 1, schedule)

    assert seen["day1"] == 1100
    assert seen["day2.5"] == 1250
    assert seen["repay1"].value == {"contract": "loan-1", "paid": 300, "owed": 950, "status": "active"}
    assert seen["day2.5_after"] == 950
    assert (seen["holder_listed"], seen["holder_sold"]) == ("l001", "h001")
    assert seen["repay2"].value["paid"] == 100
    assert seen["day5"] == 1000 + 500 - 400
    assert seen["day10"] == 1000 + 1000 - 400
    assert seen["before_due"] == 1000 + 1999 - 400  # floor(1000 * 0.1 * (20 days - 1 s))

    c = content(world, "loan-1")
    assert c["status"] == "repaid" and c["repaid"] == 3000
    payments = [(h["t"], h["what"], h["amount"], h["holder"]) for h in c["history"]]
    assert payments == [
        (0.0, "offered", 1000, "l001"),
        (0.0, "accepted", 1000, "l001"),
        (2.5 * DAY, "repayment", 300, "l001"),
        (5 * DAY, "repayment", 100, "h001"),  # the next payment after the sale: the new holder
        (due, "collected", 2600, "h001"),  # collected automatically, at the due time exactly
        (due, "repaid", 3000, "h001"),
    ]
    # Every balance: l001 lent 1000, got 300 back and sold the claim for 400.
    assert ledger.scrip["l001"] == 2000 - 1000 + 300 + 400
    assert ledger.scrip["d001"] == 3000 + 1000 - 300 - 100 - 2600
    assert ledger.scrip["h001"] == 500 - 400 + 100 + 2600
    assert ledger.held.get("contracts", 0) == 0
    assert owed(world, "loan-1") == 0
    assert world.artifacts.get("loan-1").owner == "h001"
    assert world.mechanisms["loan_repaid"] == 1 and world.mechanisms["loan_defaulted"] == 0
    assert world.mechanisms["claim_changed_hands"] == 1
    assert [e.what for e in events][-2:] == ["collected", "repaid"]
    record = ok(call(world, "operator", "contracts", "credit", {"principal": "d001"}))
    assert record == {"principal": "d001", "borrowed": 1000, "active": 0, "repaid": 1, "defaulted": 0, "outstanding": 0}
    assert all_true(world.invariants())


@pytest.mark.anyio
async def test_default_at_due_then_repaid_later():
    world = loan_world(lender=500, debtor=0, buyer=0)
    ledger = world.ledger
    seen: dict[str, object] = {}
    due = 2 * DAY

    def start():
        offer(world, principal=100, rate=0.5, due_in=due)
        ok(call(world, "d001", "contracts", "accept", {"contract": "loan-1"}))
        ok(call(world, "d001", "ledger", "transfer", {"to": "h001", "amount": 60}))  # spends it

    def after_due():
        seen["credit"] = ok(call(world, "l001", "contracts", "credit", {"principal": "d001"}))
        seen["owed"] = owed(world, "loan-1")
        ok(call(world, "operator", "ledger", "transfer", {"to": "d001", "amount": 200}))
        seen["too_much"] = call(world, "d001", "contracts", "repay", {"contract": "loan-1", "amount": 161})
        seen["part"] = ok(call(world, "d001", "contracts", "repay", {"contract": "loan-1", "amount": 100}))
        seen["owed_after_part"] = owed(world, "loan-1")

    def much_later():
        seen["owed_later"] = owed(world, "loan-1")  # no interest after the default
        seen["rest"] = ok(call(world, "d001", "contracts", "repay", {"contract": "loan-1", "amount": 60}))

    await run_world(world, 10 * DAY, [(0.0, start), (3 * DAY, after_due), (9 * DAY, much_later)])

    # At due: owed 100 + floor(100 * 0.5 * 2) = 200; the debtor had 40, all collected.
    assert seen["owed"] == 160
    assert seen["credit"] == {"principal": "d001", "borrowed": 100, "active": 0, "repaid": 0, "defaulted": 1,
                              "outstanding": 160}
    r = seen["too_much"]
    assert not r.ok and r.error == "loan-1: you owe 160, cannot repay 161"
    assert seen["part"] == {"contract": "loan-1", "paid": 100, "owed": 60, "status": "defaulted"}
    assert seen["owed_after_part"] == 60 and seen["owed_later"] == 60
    assert seen["rest"] == {"contract": "loan-1", "paid": 60, "owed": 0, "status": "repaid"}
    c = content(world, "loan-1")
    assert c["status"] == "repaid" and c["outstanding"] == 0 and c["repaid"] == 200
    assert [(h["t"], h["what"], h["amount"]) for h in c["history"]] == [
        (0.0, "offered", 100), (0.0, "accepted", 100),
        (due, "collected", 40), (due, "defaulted", 160),
        (3 * DAY, "repayment", 100), (9 * DAY, "repayment", 60), (9 * DAY, "repaid", 200),
    ]
    assert ledger.scrip["l001"] == 500 - 100 + 200
    assert ledger.scrip["d001"] == 100 - 60 - 40 + 200 - 160
    assert ledger.scrip["h001"] == 60
    assert world.mechanisms["loan_defaulted"] == 1 and world.mechanisms["loan_repaid"] == 1
    # The default stays on the public record after repayment.
    record = ok(call(world, "h001", "contracts", "credit", {"principal": "d001"}))
    assert record == {"principal": "d001", "borrowed": 100, "active": 0, "repaid": 1, "defaulted": 1, "outstanding": 0}
    assert all_true(world.invariants())


@pytest.mark.anyio
async def test_a_debtor_with_nothing_defaults_for_the_whole_amount():
    world = loan_world(lender=100, debtor=0, buyer=0)

    def start():
        offer(world, principal=50, rate=1.0, due_in=DAY)
        ok(call(world, "d001", "contracts", "accept", {"contract": "loan-1"}))
        ok(call(world, "d001", "ledger", "transfer", {"to": "h001", "amount": 50}))

    await run_world(world, 2 * DAY, [(0.0, start)])
    c = content(world, "loan-1")
    assert (c["status"], c["outstanding"], c["repaid"]) == ("defaulted", 100, 0)
    assert [h["what"] for h in c["history"]] == ["offered", "accepted", "defaulted"]
    assert world.ledger.scrip["l001"] == 50
    assert all_true(world.invariants())


def test_decline_releases_the_principal_to_the_lender():
    world = loan_world()
    cid = offer(world, principal=250)
    assert world.ledger.scrip["l001"] == 1750 and world.ledger.held["contracts"] == 250
    assert ok(call(world, "d001", "contracts", "decline", {"contract": cid})) is None
    assert world.ledger.scrip["l001"] == 2000 and world.ledger.held["contracts"] == 0
    assert world.ledger.scrip["d001"] == 3000
    assert content(world, cid)["status"] == "cancelled"
    r = call(world, "d001", "contracts", "accept", {"contract": cid})
    assert not r.ok and r.error == f"{cid} is cancelled; this needs it offered"
    assert all_true(world.invariants())


def test_cancel_releases_the_principal_and_the_debtor_cannot_accept_after():
    world = loan_world()
    cid = offer(world, principal=250)
    r = call(world, "d001", "contracts", "cancel", {"contract": cid})
    assert not r.ok and r.code == "not_owner" and "only the lender (l001)" in r.error
    assert ok(call(world, "l001", "contracts", "cancel", {"contract": cid})) is None
    assert world.ledger.scrip["l001"] == 2000 and world.ledger.held["contracts"] == 0
    before = economy_state(world)
    for who, method in (("d001", "accept"), ("d001", "decline"), ("l001", "cancel")):
        r = call(world, who, "contracts", method, {"contract": cid})
        assert not r.ok and r.error == f"{cid} is cancelled; this needs it offered", (who, method)
    assert economy_state(world) == before


def test_double_accept_is_refused_and_changes_nothing():
    world = loan_world()
    cid = offer(world, principal=250)
    ok(call(world, "d001", "contracts", "accept", {"contract": cid}))
    world.clock.advance(3600)
    before = economy_state(world)
    r = call(world, "d001", "contracts", "accept", {"contract": cid})
    assert not r.ok and r.code == "invalid" and r.error == f"{cid} is active; this needs it offered"
    assert economy_state(world) == before
    assert world.ledger.scrip["d001"] == 3250


def test_mine_lists_contracts_by_role():
    world = loan_world()
    a = offer(world, principal=10)
    b = offer(world, lender="h001", debtor="l001", principal=20)
    assert [x["contract"] for x in ok(call(world, "l001", "contracts", "mine", {}))] == [a, b]
    assert [x["contract"] for x in ok(call(world, "d001", "contracts", "mine", {}))] == [a]
    assert [x["contract"] for x in ok(call(world, "h001", "contracts", "mine", {}))] == [b]
    ok(call(world, "d001", "contracts", "accept", {"contract": a}))  # an accepted loan is a claim
    ok(call(world, "l001", "ledger", "transfer_artifact", {"artifact": a, "to": "h001"}))
    assert [x["contract"] for x in ok(call(world, "h001", "contracts", "mine", {}))] == [a, b]
    mine = ok(call(world, "d001", "contracts", "mine", {}))
    assert mine[0]["holder"] == "h001" and mine[0]["owed"] == 10 and "history" not in mine[0]


def test_a_transferred_claim_pays_its_new_holder():
    world = loan_world()
    cid = offer(world, principal=100, rate=0.0)
    ok(call(world, "d001", "contracts", "accept", {"contract": cid}))
    ok(call(world, "l001", "ledger", "transfer_artifact", {"artifact": cid, "to": "h001"}))
    ok(call(world, "d001", "contracts", "repay", {"contract": cid, "amount": 100}))
    assert world.ledger.scrip["h001"] == 600 and world.ledger.scrip["l001"] == 1900
    assert content(world, cid)["status"] == "repaid"
    assert all_true(world.invariants())


def test_the_operator_can_offer_a_loan_through_world_invoke():
    world = loan_world()
    # The loan's `principal` shares its name with the caller keyword: pass the arguments as a dict.
    r = world.invoke("contracts", "offer", {"debtor": "d001", "principal": 50, "rate_per_day": 0.1, "due_in": DAY})
    assert r.ok, r
    assert world.ledger.held["contracts"] == 50


def test_a_debtor_who_bought_its_own_claim_can_settle_it():
    world = loan_world()
    cid = offer(world, principal=100, rate=0.0)
    ok(call(world, "d001", "contracts", "accept", {"contract": cid}))
    ok(call(world, "l001", "market", "list", {"artifact": cid, "price": 90}))
    ok(call(world, "d001", "market", "buy", {"listing": "listing-1"}))
    r = call(world, "d001", "contracts", "repay", {"contract": cid, "amount": 100})
    assert r.ok, r
    assert content(world, cid)["status"] == "repaid"


@pytest.mark.anyio
async def test_collection_from_a_debtor_holding_its_own_claim_does_not_crash_the_world():
    world = loan_world()
    cid = offer(world, principal=100, rate=0.0, due_in=60.0)
    ok(call(world, "d001", "contracts", "accept", {"contract": cid}))
    ok(call(world, "l001", "ledger", "transfer_artifact", {"artifact": cid, "to": "d001"}))
    await run_world(world, 120.0)
    assert content(world, cid)["status"] in ("repaid", "defaulted")
    assert all_true(world.invariants())


def test_payments_while_the_claim_is_listed_go_to_the_seller_then_to_the_buyer():
    world = loan_world()
    cid = offer(world, principal=100, rate=0.0)
    ok(call(world, "d001", "contracts", "accept", {"contract": cid}))
    ok(call(world, "l001", "market", "list", {"artifact": cid, "price": 50}))
    ok(call(world, "d001", "contracts", "repay", {"contract": cid, "amount": 30}))
    assert (world.ledger.scrip["l001"], world.ledger.scrip["market"]) == (2000 - 100 + 30, 0)
    ok(call(world, "h001", "market", "buy", {"listing": "listing-1"}))
    ok(call(world, "d001", "contracts", "repay", {"contract": cid, "amount": 70}))
    assert world.ledger.scrip["h001"] == 500 - 50 + 70
    assert world.ledger.scrip["l001"] == 2000 - 100 + 30 + 50
    assert [(h["what"], h["holder"]) for h in content(world, cid)["history"]][-3:] == [
        ("repayment", "l001"), ("repayment", "h001"), ("repaid", "h001")]
    assert all_true(world.invariants())


def test_a_lender_cannot_cancel_an_offer_whose_claim_it_sold():
    world = loan_world()
    cid = offer(world, principal=50)
    # An offer is not a claim yet: it cannot be sold (or given) until the debtor accepts.
    before = economy_state(world)
    r = call(world, "l001", "market", "list", {"artifact": cid, "price": 40})
    assert not r.ok and "only an accepted loan is a claim" in r.error
    r = call(world, "l001", "ledger", "transfer_artifact", {"artifact": cid, "to": "h001"})
    assert not r.ok and "only an accepted loan is a claim" in r.error
    assert economy_state(world) == before
    ok(call(world, "l001", "contracts", "cancel", {"contract": cid}))  # so the lender can still cancel it


class Always:
    """A random stream that always says 0.0: a brain's every "maybe" is yes."""

    def random(self) -> float:
        return 0.0


def test_a_claim_repaid_while_listed_is_withdrawn_and_goes_back_to_its_seller():
    # Found by the soak: claims repaid while listed lay on the market for ever (a repaid
    # loan is no longer a claim, so not even its seller could cancel the listing), and kept
    # their settled contracts in memory: the world grew by the hour.
    from engine.brains import build_brain

    world = loan_world()
    cid = offer(world, principal=100, rate=0.0)
    ok(call(world, "d001", "contracts", "accept", {"contract": cid}))
    ok(call(world, "l001", "market", "list", {"artifact": cid, "price": 50}))
    trader = build_brain("trader", {"budget": 100}, Always())
    view = world.agents["h001"].view
    view.now = world.clock.now()
    buy = trader.decide(view)  # owed 100, asked 50: a trader buys it
    assert (buy.target, buy.method, buy.args) == ("market", "buy", {"listing": "listing-1"})
    events = world.bus.subscribe(["listing_cancelled"])
    ok(call(world, "d001", "contracts", "repay", {"contract": cid, "amount": 100}))
    assert content(world, cid)["status"] == "repaid"
    assert not world.market.open and not world.market.by_artifact
    assert world.market.closed[-1].status == "cancelled"
    assert world.artifacts.by_id[cid].owner == "l001"
    assert [(e.listing_id, e.seller) for e in events.drain()] == [("listing-1", "l001")]
    assert world.ledger.scrip["l001"] == 2000 - 100 + 100  # the repayment went to the seller
    assert all_true(world.invariants())


def test_a_trader_buys_a_defaulted_claim_only_for_less_than_is_owed():
    from engine.brains import build_brain

    world = loan_world(debtor=0)
    cid = offer(world, principal=100, rate=0.0, due_in=60.0)
    ok(call(world, "d001", "contracts", "accept", {"contract": cid}))
    ok(call(world, "d001", "ledger", "transfer", {"to": "h001", "amount": 60}))  # keeps 40
    world.clock.advance(61.0)
    world.contracts.collect(cid, world.clock.now())  # collects 40; 60 outstanding
    assert content(world, cid)["status"] == "defaulted"
    trader = build_brain("trader", {"budget": 100}, Always())
    view = world.agents["h001"].view
    for price, buys in ((70, False), (60, False), (59, True)):
        listing = ok(call(world, "l001", "market", "list", {"artifact": cid, "price": price}))["listing"]
        view.now = world.clock.now()
        action = trader.decide(view)
        assert (getattr(action, "method", None) == "buy") is buys, (price, action)
        ok(call(world, "l001", "market", "cancel", {"listing": listing}))
