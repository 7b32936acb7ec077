"""Bad input to every genesis method of the oracle, the market, rights and contracts
(issue 3, item 6): wrong types, negative or zero amounts, unknown ids, acting on what you do
not own, double accept, repaying more than owed. Each is a refused `Result` with a clear
reason (no Python exception names), and changes nothing: ledger scrip, held and rates,
artifact owners and contents, bids, listings and contracts are snapshot before and after.

A hypothesis test then throws random junk at the same methods as random principals.
"""

from __future__ import annotations

import math

import pytest
from econ import call, economy_state, ok
from ecotest import all_true, make_world
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.actions import Invoke

NAN, INF = math.nan, math.inf


def setup_world():
    """a001 (100 scrip) and a002 (100) trade; a003 has 5. Open state to protect:

    doc-1   a001's, with a001's open bid of 5
    doc-2   a002's
    doc-3   a001's, listed as listing-1 for 10
    doc-4   a002's, listed as listing-2 for 3, reserved for a001
    doc-5   a003's
    listing-3 sold (doc-6, a002 -> a001), listing-4 cancelled (doc-7, a002's)
    slice   a001's rate slice of 0.2; slice2 (0.1) listed as listing-5
    loan-1  a001 -> a002, 20, offered;  loan-2  a001 -> a002, 10, active;
    loan-3  a001 -> a002, 5, cancelled
    """
    world = make_world(
        [{"count": 2, "scrip": 100, "rate": 1.0, "capacity": 50.0}, {"scrip": 5, "rate": 1.0}],
        oracle={"min_bid": 2, "resolution_interval": 1e7},
    )
    for doc, owner in (("doc-1", "a001"), ("doc-2", "a002"), ("doc-3", "a001"), ("doc-4", "a002"),
                       ("doc-5", "a003"), ("doc-6", "a002"), ("doc-7", "a002")):
        world.artifacts.create(owner, "data", f"{doc} of {owner}", 0.0, doc)
    ok(call(world, "a001", "oracle", "bid", {"artifact": "doc-1", "amount": 5}))
    assert ok(call(world, "a001", "market", "list", {"artifact": "doc-3", "price": 10}))["listing"] == "listing-1"
    ok(call(world, "a002", "market", "list", {"artifact": "doc-4", "price": 3, "buyer": "a001"}))
    ok(call(world, "a002", "market", "list", {"artifact": "doc-6", "price": 1}))
    ok(call(world, "a001", "market", "buy", {"listing": "listing-3"}))
    ok(call(world, "a002", "market", "list", {"artifact": "doc-7", "price": 1}))
    ok(call(world, "a002", "market", "cancel", {"listing": "listing-4"}))
    world.slice = ok(call(world, "a001", "rights", "slice_rate", {"amount": 0.2}))["artifact"]
    world.slice2 = ok(call(world, "a001", "rights", "slice_rate", {"amount": 0.1}))["artifact"]
    assert ok(call(world, "a001", "market", "list", {"artifact": world.slice2, "price": 4}))["listing"] == "listing-5"
    for p in (20, 10, 5):
        ok(call(world, "a001", "contracts", "offer",
                {"debtor": "a002", "principal": p, "rate_per_day": 0.1, "due_in": 86_400.0}))
    ok(call(world, "a002", "contracts", "accept", {"contract": "loan-2"}))
    ok(call(world, "a001", "contracts", "cancel", {"contract": "loan-3"}))
    world.clock.advance(60.0)
    assert all_true(world.invariants())
    return world


SLICE = "<slice>"
LISTED_SLICE = "<slice2>"
BID = {"artifact": "doc-1", "amount": 5}
LIST = {"artifact": "doc-1", "price": 10}
OFFER = {"debtor": "a002", "principal": 10, "rate_per_day": 0.1, "due_in": 3600.0}
REPAY = {"contract": "loan-2", "amount": 5}


def w(base: dict, **changes) -> dict:
    out = {**base, **changes}
    return {k: v for k, v in out.items() if v is not DROP}


DROP = object()

# (id, principal, target, method, args, code, fragment of the reason)
CASES = [
    # -- oracle.bid -------------------------------------------------------------------------
    ("bid-amount-str", "a001", "oracle", "bid", w(BID, amount="5"), "invalid", "amount must be a whole number of scrip in [2, 2^53-1], got '5'"),
    ("bid-amount-float", "a001", "oracle", "bid", w(BID, amount=5.0), "invalid", "whole number of scrip in [2, 2^53-1], got 5.0"),
    ("bid-amount-bool", "a001", "oracle", "bid", w(BID, amount=True), "invalid", "whole number of scrip in [2, 2^53-1], got True"),
    ("bid-amount-none", "a001", "oracle", "bid", w(BID, amount=None), "invalid", "whole number of scrip in [2, 2^53-1], got None"),
    ("bid-amount-list", "a001", "oracle", "bid", w(BID, amount=[5]), "invalid", "whole number of scrip in [2, 2^53-1], got [5]"),
    ("bid-amount-zero", "a001", "oracle", "bid", w(BID, amount=0), "invalid", "in [2, 2^53-1], got 0"),
    ("bid-amount-negative", "a001", "oracle", "bid", w(BID, amount=-3), "invalid", "in [2, 2^53-1], got -3"),
    ("bid-below-min", "a001", "oracle", "bid", w(BID, amount=1), "invalid", "amount must be a whole number of scrip in [2, 2^53-1], got 1"),
    ("bid-unknown-artifact", "a001", "oracle", "bid", w(BID, artifact="ghost"), "unknown", "unknown artifact 'ghost'"),
    ("bid-artifact-none", "a001", "oracle", "bid", w(BID, artifact=None), "unknown", "unknown artifact None"),
    ("bid-artifact-list", "a001", "oracle", "bid", w(BID, artifact=["doc-1"]), "unknown", "unknown artifact ['doc-1']"),
    ("bid-not-owner", "a001", "oracle", "bid", w(BID, artifact="doc-2"), "not_owner", "owned by a002, not a001"),
    ("bid-listed", "a001", "oracle", "bid", w(BID, artifact="doc-3"), "not_owner", "owned by market, not a001"),
    ("bid-genesis", "operator", "oracle", "bid", w(BID, artifact="oracle"), "not_owner", "owned by system"),
    ("bid-insufficient", "a003", "oracle", "bid", w(BID, artifact="doc-5", amount=6), "insufficient", "have 5, need 6"),
    ("bid-raise-insufficient", "a001", "oracle", "bid", w(BID, amount=200), "insufficient", "need 195"),
    ("bid-missing-amount", "a001", "oracle", "bid", w(BID, amount=DROP), "invalid", "oracle.bid needs amount"),
    ("bid-extra-arg", "a001", "oracle", "bid", w(BID, price=3), "invalid", "takes no argument 'price'"),
    ("bid-unknown-principal", "ghost", "oracle", "bid", BID, "unknown", "unknown principal 'ghost'"),
    # -- oracle.cancel / open_bids / last_resolution / resolve_now ----------------------------------
    ("cancel-bid-unknown", "a001", "oracle", "cancel", {"artifact": "ghost"}, "unknown", "a001 has no open bid on 'ghost'"),
    ("cancel-bid-none", "a001", "oracle", "cancel", {"artifact": None}, "unknown", "no open bid on None"),
    ("cancel-bid-int", "a001", "oracle", "cancel", {"artifact": 7}, "unknown", "no open bid on 7"),
    ("cancel-bid-list", "a001", "oracle", "cancel", {"artifact": ["doc-1"]}, "unknown", "no open bid on ['doc-1']"),
    ("cancel-others-bid", "a002", "oracle", "cancel", {"artifact": "doc-1"}, "unknown", "a002 has no open bid on 'doc-1'"),
    ("cancel-bid-missing", "a001", "oracle", "cancel", {}, "invalid", "oracle.cancel needs artifact"),
    ("open-bids-extra", "a001", "oracle", "open_bids", {"all": True}, "invalid", "takes no argument 'all'"),
    ("last-resolution-extra", "a001", "oracle", "last_resolution", {"n": 1}, "invalid", "takes no argument 'n'"),
    ("resolve-now-agent", "a001", "oracle", "resolve_now", {}, "forbidden", "oracle.resolve_now is for the operator only"),
    ("resolve-now-extra", "operator", "oracle", "resolve_now", {"now": 5}, "invalid", "takes no argument 'now'"),
    ("oracle-unknown-method", "a001", "oracle", "mint", {}, "unknown", "oracle has no method 'mint'"),
    # -- market.list -----------------------------------------------------------------------------
    ("list-price-str", "a001", "market", "list", w(LIST, price="10"), "invalid", "price must be a whole number of scrip in [0, 2^53-1], got '10'"),
    ("list-price-float", "a001", "market", "list", w(LIST, price=10.0), "invalid", "got 10.0"),
    ("list-price-bool", "a001", "market", "list", w(LIST, price=True), "invalid", "got True"),
    ("list-price-none", "a001", "market", "list", w(LIST, price=None), "invalid", "got None"),
    ("list-price-list", "a001", "market", "list", w(LIST, price=[10]), "invalid", "got [10]"),
    ("list-price-negative", "a001", "market", "list", w(LIST, price=-1), "invalid", "got -1"),
    ("list-unknown-artifact", "a001", "market", "list", w(LIST, artifact="ghost"), "unknown", "unknown artifact 'ghost'"),
    ("list-artifact-none", "a001", "market", "list", w(LIST, artifact=None), "unknown", "unknown artifact None"),
    ("list-not-owner", "a001", "market", "list", w(LIST, artifact="doc-2"), "not_owner", "owned by a002, not a001"),
    ("list-already-listed", "a001", "market", "list", w(LIST, artifact="doc-3"), "not_owner", "owned by market, not a001"),
    ("list-genesis", "operator", "market", "list", w(LIST, artifact="market"), "not_owner", "owned by system"),
    ("list-config-of-other", "a002", "market", "list", w(LIST, artifact="config:a001"), "not_owner", "owned by a001, not a002"),
    ("list-contract-of-other", "a002", "market", "list", w(LIST, artifact="loan-2"), "not_owner", "owned by a001, not a002"),
    ("list-buyer-unknown", "a001", "market", "list", w(LIST, buyer="ghost"), "unknown", "unknown buyer 'ghost'"),
    ("list-buyer-int", "a001", "market", "list", w(LIST, buyer=5), "unknown", "unknown buyer 5"),
    ("list-buyer-self", "a001", "market", "list", w(LIST, buyer="a001"), "invalid", "cannot restrict a listing to yourself"),
    ("list-missing-price", "a001", "market", "list", w(LIST, price=DROP), "invalid", "market.list needs price"),
    # -- market.buy ------------------------------------------------------------------------------
    ("buy-unknown", "a002", "market", "buy", {"listing": "ghost"}, "unknown", "unknown listing 'ghost'"),
    ("buy-none", "a002", "market", "buy", {"listing": None}, "unknown", "unknown listing None"),
    ("buy-int", "a002", "market", "buy", {"listing": 1}, "unknown", "unknown listing 1"),
    ("buy-list", "a002", "market", "buy", {"listing": ["listing-1"]}, "unknown", "unknown listing ['listing-1']"),
    ("buy-own", "a001", "market", "buy", {"listing": "listing-1"}, "invalid", "listing-1 is your own listing"),
    ("buy-reserved", "a003", "market", "buy", {"listing": "listing-2"}, "forbidden", "listing-2 is reserved for a001"),
    ("buy-insufficient", "a003", "market", "buy", {"listing": "listing-1"}, "insufficient", "insufficient scrip: have 5, need 10"),
    ("buy-sold", "a002", "market", "buy", {"listing": "listing-3"}, "closed", "listing listing-3 is sold"),
    ("buy-cancelled", "a001", "market", "buy", {"listing": "listing-4"}, "closed", "listing listing-4 is cancelled"),
    ("buy-missing", "a002", "market", "buy", {}, "invalid", "market.buy needs listing"),
    # -- market.cancel / listings ------------------------------------------------------------------
    ("mcancel-unknown", "a001", "market", "cancel", {"listing": "ghost"}, "unknown", "unknown listing 'ghost'"),
    ("mcancel-none", "a001", "market", "cancel", {"listing": None}, "unknown", "unknown listing None"),
    ("mcancel-others", "a002", "market", "cancel", {"listing": "listing-1"}, "not_owner", "listing-1 is a001's listing, not a002's"),
    ("mcancel-sold", "a002", "market", "cancel", {"listing": "listing-3"}, "closed", "listing listing-3 is sold"),
    ("mcancel-cancelled", "a002", "market", "cancel", {"listing": "listing-4"}, "closed", "listing listing-4 is cancelled"),
    ("listings-extra", "a001", "market", "listings", {"seller": "a001"}, "invalid", "takes no argument 'seller'"),
    ("listings-kind-int", "a001", "market", "listings", {"kind": 123}, "invalid", "kind"),
    # -- rights.configure ------------------------------------------------------------------------
    ("configure-unknown-agent", "a001", "rights", "configure", {"agent": "ghost", "brain": "boltzmann"}, "unknown", "unknown agent 'ghost'"),
    ("configure-agent-none", "a001", "rights", "configure", {"agent": None, "brain": "boltzmann"}, "unknown", "unknown agent None"),
    ("configure-agent-list", "a001", "rights", "configure", {"agent": ["a001"], "brain": "boltzmann"}, "unknown", "unknown agent ['a001']"),
    ("configure-not-owner", "a002", "rights", "configure", {"agent": "a001", "brain": "boltzmann"}, "not_owner", "config right is owned by a001, not a002"),
    ("configure-operator-not-owner", "operator", "rights", "configure", {"agent": "a001", "think_delay": 1.0}, "not_owner", "owned by a001, not operator"),
    ("configure-nothing", "a001", "rights", "configure", {"agent": "a001"}, "invalid", "nothing to change"),
    ("configure-unknown-brain", "a001", "rights", "configure", {"agent": "a001", "brain": "telepath"}, "unknown", "unknown brain 'telepath'"),
    ("configure-brain-int", "a001", "rights", "configure", {"agent": "a001", "brain": 5}, "unknown", "unknown brain 5"),
    ("configure-brain-none", "a001", "rights", "configure", {"agent": "a001", "brain": None}, "unknown", "unknown brain None"),
    ("configure-params-list", "a001", "rights", "configure", {"agent": "a001", "params": [1]}, "invalid", "params must be a table, got [1]"),
    ("configure-params-str", "a001", "rights", "configure", {"agent": "a001", "params": "x"}, "invalid", "params must be a table"),
    ("configure-params-unknown", "a001", "rights", "configure", {"agent": "a001", "params": {"bogus": 1}}, "invalid", "bad params for test_script"),
    ("configure-params-bad-value", "a001", "rights", "configure", {"agent": "a001", "params": {"think_cost": -1}}, "invalid", "think_cost"),
    ("configure-params-wrong-type", "a001", "rights", "configure", {"agent": "a001", "params": {"think_cost": "1"}}, "invalid", "think_cost"),
    ("configure-delay-negative", "a001", "rights", "configure", {"agent": "a001", "think_delay": -1}, "invalid", "think_delay must be a number in [0, 86400] seconds, got -1"),
    ("configure-delay-str", "a001", "rights", "configure", {"agent": "a001", "think_delay": "1"}, "invalid", "got '1'"),
    ("configure-delay-bool", "a001", "rights", "configure", {"agent": "a001", "think_delay": True}, "invalid", "got True"),
    ("configure-delay-nan", "a001", "rights", "configure", {"agent": "a001", "think_delay": NAN}, "invalid", "got nan"),
    ("configure-delay-inf", "a001", "rights", "configure", {"agent": "a001", "think_delay": INF}, "invalid", "got inf"),
    ("configure-delay-none", "a001", "rights", "configure", {"agent": "a001", "think_delay": None}, "invalid", "got None"),
    ("configure-balance", "a001", "rights", "configure", {"agent": "a001", "scrip": 10**6}, "invalid", "takes no argument 'scrip'"),
    ("owner-unknown", "a001", "rights", "owner", {"agent": "ghost"}, "unknown", "unknown agent 'ghost'"),
    ("owner-none", "a001", "rights", "owner", {"agent": None}, "unknown", "unknown agent None"),
    ("owner-missing", "a001", "rights", "owner", {}, "invalid", "rights.owner needs agent"),
    ("rights-extra", "a001", "rights", "rights", {"agent": "a001"}, "invalid", "takes no argument 'agent'"),
    # -- rights.slice_rate / split / dissolve ----------------------------------------------------
    ("slice-str", "a001", "rights", "slice_rate", {"amount": "0.1"}, "invalid", "amount must be a number in (0, 10^9] compute units/s, got '0.1'"),
    ("slice-bool", "a001", "rights", "slice_rate", {"amount": True}, "invalid", "must be a number in (0, 10^9] compute units/s, got True"),
    ("slice-none", "a001", "rights", "slice_rate", {"amount": None}, "invalid", "must be a number in (0, 10^9] compute units/s, got None"),
    ("slice-list", "a001", "rights", "slice_rate", {"amount": [0.1]}, "invalid", "must be a number in (0, 10^9] compute units/s, got [0.1]"),
    ("slice-zero", "a001", "rights", "slice_rate", {"amount": 0}, "invalid", "in (0, 10^9] compute units/s, got 0"),
    ("slice-negative", "a001", "rights", "slice_rate", {"amount": -0.1}, "invalid", "compute units/s, got -0.1"),
    ("slice-nan", "a001", "rights", "slice_rate", {"amount": NAN}, "invalid", "compute units/s, got nan"),
    ("slice-inf", "a001", "rights", "slice_rate", {"amount": INF}, "invalid", "compute units/s, got inf"),
    ("slice-too-small", "a001", "rights", "slice_rate", {"amount": 1e-9}, "insufficient", "cannot slice"),
    ("slice-too-much", "a001", "rights", "slice_rate", {"amount": 0.71}, "insufficient", "0.7 rate is free to slice"),
    ("split-unknown", "a001", "rights", "split", {"artifact": "ghost", "amount": 0.1}, "unknown", "unknown artifact 'ghost'"),
    ("split-none", "a001", "rights", "split", {"artifact": None, "amount": 0.1}, "unknown", "unknown artifact None"),
    ("split-not-a-slice", "a001", "rights", "split", {"artifact": "doc-1", "amount": 0.1}, "invalid", "doc-1 is a data artifact, not a rate slice"),
    ("split-others", "a002", "rights", "split", {"artifact": SLICE, "amount": 0.1}, "not_owner", "is owned by a001, not a002"),
    ("split-listed", "a001", "rights", "split", {"artifact": LISTED_SLICE, "amount": 0.05}, "not_owner", "is owned by market, not a001"),
    ("split-whole", "a001", "rights", "split", {"artifact": SLICE, "amount": 0.2}, "invalid", "split amount must be between 0 and 0.2"),
    ("split-more", "a001", "rights", "split", {"artifact": SLICE, "amount": 0.5}, "invalid", "between 0 and 0.2"),
    ("split-tiny", "a001", "rights", "split", {"artifact": SLICE, "amount": 1e-9}, "invalid", "between 0 and 0.2"),
    ("split-zero", "a001", "rights", "split", {"artifact": SLICE, "amount": 0}, "invalid", "in (0, 10^9] compute units/s, got 0"),
    ("split-negative", "a001", "rights", "split", {"artifact": SLICE, "amount": -0.1}, "invalid", "got -0.1"),
    ("split-str", "a001", "rights", "split", {"artifact": SLICE, "amount": "0.1"}, "invalid", "must be a number in (0, 10^9] compute units/s, got '0.1'"),
    ("split-bool", "a001", "rights", "split", {"artifact": SLICE, "amount": True}, "invalid", "must be a number in (0, 10^9] compute units/s, got True"),
    ("split-none-amount", "a001", "rights", "split", {"artifact": SLICE, "amount": None}, "invalid", "must be a number in (0, 10^9] compute units/s, got None"),
    ("dissolve-unknown", "a001", "rights", "dissolve", {"artifact": "ghost"}, "unknown", "unknown artifact 'ghost'"),
    ("dissolve-int", "a001", "rights", "dissolve", {"artifact": 3}, "unknown", "unknown artifact 3"),
    ("dissolve-not-a-slice", "a001", "rights", "dissolve", {"artifact": "config:a001"}, "invalid", "config:a001 is a config artifact, not a rate slice"),
    ("dissolve-others", "a002", "rights", "dissolve", {"artifact": SLICE}, "not_owner", "owned by a001, not a002"),
    ("dissolve-listed", "a001", "rights", "dissolve", {"artifact": LISTED_SLICE}, "not_owner", "owned by market, not a001"),
    # -- contracts.offer ---------------------------------------------------------------------------
    ("offer-debtor-unknown", "a001", "contracts", "offer", w(OFFER, debtor="ghost"), "unknown", "unknown debtor 'ghost'"),
    ("offer-debtor-none", "a001", "contracts", "offer", w(OFFER, debtor=None), "unknown", "unknown debtor None"),
    ("offer-debtor-list", "a001", "contracts", "offer", w(OFFER, debtor=["a002"]), "unknown", "unknown debtor ['a002']"),
    ("offer-self", "a001", "contracts", "offer", w(OFFER, debtor="a001"), "invalid", "you cannot lend to yourself"),
    ("offer-service", "a001", "contracts", "offer", w(OFFER, debtor="oracle"), "invalid", "oracle is a service and cannot borrow"),
    ("offer-principal-str", "a001", "contracts", "offer", w(OFFER, principal="10"), "invalid", "principal must be a whole number of scrip in [1, 2^53-1], got '10'"),
    ("offer-principal-float", "a001", "contracts", "offer", w(OFFER, principal=10.0), "invalid", "got 10.0"),
    ("offer-principal-bool", "a001", "contracts", "offer", w(OFFER, principal=True), "invalid", "got True"),
    ("offer-principal-none", "a001", "contracts", "offer", w(OFFER, principal=None), "invalid", "got None"),
    ("offer-principal-zero", "a001", "contracts", "offer", w(OFFER, principal=0), "invalid", "principal must be a whole number of scrip in [1, 2^53-1], got 0"),
    ("offer-principal-negative", "a001", "contracts", "offer", w(OFFER, principal=-5), "invalid", "in [1, 2^53-1], got -5"),
    ("offer-principal-too-much", "a003", "contracts", "offer", w(OFFER, principal=6), "insufficient", "insufficient scrip: have 5, need 6"),
    ("offer-rate-str", "a001", "contracts", "offer", w(OFFER, rate_per_day="0.1"), "invalid", "rate_per_day must be a decimal number in [0, 10] per day, got '0.1'"),
    ("offer-rate-none", "a001", "contracts", "offer", w(OFFER, rate_per_day=None), "invalid", "rate_per_day must be a decimal number"),
    ("offer-rate-bool", "a001", "contracts", "offer", w(OFFER, rate_per_day=True), "invalid", "got True"),
    ("offer-rate-negative", "a001", "contracts", "offer", w(OFFER, rate_per_day=-0.1), "invalid", "got -0.1"),
    ("offer-rate-nan", "a001", "contracts", "offer", w(OFFER, rate_per_day=NAN), "invalid", "got nan"),
    ("offer-rate-over-cap", "a001", "contracts", "offer", w(OFFER, rate_per_day=10.5), "invalid", "in [0, 10] per day, got 10.5"),
    ("offer-due-zero", "a001", "contracts", "offer", w(OFFER, due_in=0), "invalid", "due_in must be a decimal number in (0, 10^9] seconds, got 0"),
    ("offer-due-negative", "a001", "contracts", "offer", w(OFFER, due_in=-60.0), "invalid", "got -60.0"),
    ("offer-due-str", "a001", "contracts", "offer", w(OFFER, due_in="3600"), "invalid", "got '3600'"),
    ("offer-due-none", "a001", "contracts", "offer", w(OFFER, due_in=None), "invalid", "got None"),
    ("offer-due-inf", "a001", "contracts", "offer", w(OFFER, due_in=INF), "invalid", "got inf"),
    ("offer-due-bool", "a001", "contracts", "offer", w(OFFER, due_in=True), "invalid", "got True"),
    ("offer-missing", "a001", "contracts", "offer", w(OFFER, due_in=DROP), "invalid", "contracts.offer needs due_in"),
    # -- contracts.accept / decline / cancel ----------------------------------------------------------
    ("accept-unknown", "a002", "contracts", "accept", {"contract": "ghost"}, "unknown", "unknown contract 'ghost'"),
    ("accept-none", "a002", "contracts", "accept", {"contract": None}, "unknown", "unknown contract None"),
    ("accept-list", "a002", "contracts", "accept", {"contract": ["loan-1"]}, "unknown", "unknown contract ['loan-1']"),
    ("accept-not-debtor", "a003", "contracts", "accept", {"contract": "loan-1"}, "not_owner", "only the debtor (a002) may accept this contract, not a003"),
    ("accept-by-lender", "a001", "contracts", "accept", {"contract": "loan-1"}, "not_owner", "only the debtor (a002)"),
    ("accept-twice", "a002", "contracts", "accept", {"contract": "loan-2"}, "invalid", "loan-2 is active; this needs it offered"),
    ("accept-cancelled", "a002", "contracts", "accept", {"contract": "loan-3"}, "invalid", "loan-3 is cancelled"),
    ("decline-not-debtor", "a003", "contracts", "decline", {"contract": "loan-1"}, "not_owner", "only the debtor (a002) may decline"),
    ("decline-active", "a002", "contracts", "decline", {"contract": "loan-2"}, "invalid", "loan-2 is active"),
    ("decline-unknown", "a002", "contracts", "decline", {"contract": 1}, "unknown", "unknown contract 1"),
    ("ccancel-not-lender", "a002", "contracts", "cancel", {"contract": "loan-1"}, "not_owner", "only the lender (a001) may cancel"),
    ("ccancel-active", "a001", "contracts", "cancel", {"contract": "loan-2"}, "invalid", "loan-2 is active"),
    ("ccancel-twice", "a001", "contracts", "cancel", {"contract": "loan-3"}, "invalid", "loan-3 is cancelled"),
    ("ccancel-unknown", "a001", "contracts", "cancel", {"contract": "ghost"}, "unknown", "unknown contract 'ghost'"),
    # -- contracts.repay / owed / credit / mine ---------------------------------------------------
    ("repay-more-than-owed", "a002", "contracts", "repay", w(REPAY, amount=11), "invalid", "loan-2: you owe 10, cannot repay 11"),
    ("repay-str", "a002", "contracts", "repay", w(REPAY, amount="5"), "invalid", "amount must be a whole number of scrip in [1, 2^53-1], got '5'"),
    ("repay-float", "a002", "contracts", "repay", w(REPAY, amount=5.0), "invalid", "got 5.0"),
    ("repay-bool", "a002", "contracts", "repay", w(REPAY, amount=True), "invalid", "got True"),
    ("repay-none", "a002", "contracts", "repay", w(REPAY, amount=None), "invalid", "got None"),
    ("repay-list", "a002", "contracts", "repay", w(REPAY, amount=[5]), "invalid", "got [5]"),
    ("repay-zero", "a002", "contracts", "repay", w(REPAY, amount=0), "invalid", "in [1, 2^53-1], got 0"),
    ("repay-negative", "a002", "contracts", "repay", w(REPAY, amount=-1), "invalid", "in [1, 2^53-1], got -1"),
    ("repay-offered", "a002", "contracts", "repay", w(REPAY, contract="loan-1"), "invalid", "loan-1 is offered; this needs it active or defaulted"),
    ("repay-cancelled", "a002", "contracts", "repay", w(REPAY, contract="loan-3"), "invalid", "loan-3 is cancelled"),
    ("repay-not-debtor", "a003", "contracts", "repay", REPAY, "not_owner", "only the debtor (a002) may repay"),
    ("repay-by-lender", "a001", "contracts", "repay", REPAY, "not_owner", "only the debtor (a002)"),
    ("repay-unknown", "a002", "contracts", "repay", w(REPAY, contract="ghost"), "unknown", "unknown contract 'ghost'"),
    ("owed-unknown", "a001", "contracts", "owed", {"contract": "ghost"}, "unknown", "unknown contract 'ghost'"),
    ("owed-none", "a001", "contracts", "owed", {"contract": None}, "unknown", "unknown contract None"),
    ("credit-unknown", "a001", "contracts", "credit", {"principal": "ghost"}, "unknown", "unknown principal 'ghost'"),
    ("credit-int", "a001", "contracts", "credit", {"principal": 5}, "unknown", "unknown principal 5"),
    ("credit-none", "a001", "contracts", "credit", {"principal": None}, "unknown", "unknown principal None"),
    ("mine-extra", "a001", "contracts", "mine", {"role": "lender"}, "invalid", "takes no argument 'role'"),
]


def _id(case) -> str:
    return case.values[0] if hasattr(case, "values") else case[0]


@pytest.mark.parametrize("name, who, target, method, args, code, fragment", CASES, ids=[_id(c) for c in CASES])
def test_bad_input_is_refused_with_a_clear_reason_and_changes_nothing(name, who, target, method, args, code, fragment):
    world = setup_world()
    args = {k: (world.slice if v == SLICE else world.slice2 if v == LISTED_SLICE else v)
            for k, v in args.items()}
    before = economy_state(world)
    refusals = world.waist.refusals
    r = call(world, who, target, method, args) if who != "ghost" else world.invoke(target, method, principal=who, **args)
    assert not r.ok, r
    assert r.code == code, r.error
    assert fragment in r.error, r.error
    for exc in ("TypeError", "KeyError", "ValueError", "AttributeError", "Traceback"):
        assert exc not in r.error, r.error
    assert economy_state(world) == before
    assert all_true(world.invariants())
    if who != "ghost":
        assert world.waist.refusals == refusals + 1


@pytest.mark.parametrize("target", ["oracle", "market", "rights", "contracts"])
def test_arguments_that_are_not_a_table_are_refused(target):
    world = setup_world()
    before = economy_state(world)
    method = {"oracle": "bid", "market": "buy", "rights": "owner", "contracts": "accept"}[target]
    for args in (["doc-1", 5], "doc-1", 5, ("a", 1)):
        r = world.waist.perform("a001", Invoke(target, method, args), world.clock.now())
        assert not r.ok and r.code == "invalid" and "arguments must be a table" in r.error, r
    assert economy_state(world) == before


def test_the_setup_is_what_the_cases_assume():
    """Guards the table: if the setup drifts, the cases would be refused for other reasons."""
    world = setup_world()
    assert world.artifacts.get("doc-3").owner == "market" and world.artifacts.get("doc-6").owner == "a001"
    assert [x.status for x in world.market.closed] == ["sold", "cancelled"]
    assert {k: a.content["status"] for k, a in world.contracts.contracts.items()} == {
        "loan-1": "offered", "loan-2": "active", "loan-3": "cancelled"}
    assert world.ledger.scrip["a001"] == 100 - 5 - 1 - 20 - 10
    assert world.ledger.rate_micro["a001"] - world.ledger.sliced_micro["a001"] == 700_000
    # The same calls with good arguments succeed (so the refusals above are about the bad one).
    for who, target, method, args in (
        ("a001", "oracle", "bid", BID), ("a001", "market", "list", LIST), ("a002", "market", "buy", {"listing": "listing-1"}),
        ("a001", "rights", "split", {"artifact": world.slice, "amount": 0.1}), ("a001", "contracts", "offer", OFFER),
        ("a002", "contracts", "repay", REPAY), ("a002", "contracts", "accept", {"contract": "loan-1"}),
        ("a001", "rights", "configure", {"agent": "a001", "think_delay": 0.5}),
    ):
        assert call(world, who, target, method, args).ok, (target, method)
    assert all_true(world.invariants())


# -- random junk --------------------------------------------------------------------------------------

METHODS = {
    ("oracle", "bid"): ("artifact", "amount"),
    ("oracle", "cancel"): ("artifact",),
    ("oracle", "open_bids"): (),
    ("oracle", "last_resolution"): (),
    ("oracle", "resolve_now"): (),
    ("market", "list"): ("artifact", "price", "buyer"),
    ("market", "buy"): ("listing",),
    ("market", "cancel"): ("listing",),
    ("market", "listings"): ("kind",),
    ("rights", "configure"): ("agent", "brain", "params", "think_delay"),
    ("rights", "owner"): ("agent",),
    ("rights", "slice_rate"): ("amount",),
    ("rights", "split"): ("artifact", "amount"),
    ("rights", "dissolve"): ("artifact",),
    ("rights", "rights"): (),
    ("contracts", "offer"): ("debtor", "principal", "rate_per_day", "due_in"),
    ("contracts", "accept"): ("contract",),
    ("contracts", "decline"): ("contract",),
    ("contracts", "cancel"): ("contract",),
    ("contracts", "repay"): ("contract", "amount"),
    ("contracts", "owed"): ("contract",),
    ("contracts", "credit"): ("principal",),
    ("contracts", "mine"): (),
}

IDS = ["doc-1", "doc-2", "doc-3", "doc-5", "listing-1", "listing-2", "listing-3", "loan-1", "loan-2", "loan-3",
       "a001", "a002", "a003", "operator", "oracle", "market", "config:a001", "config:a002", "rate-1", "rate-2",
       "boltzmann", "test_script", "data", "ghost", ""]
JUNK = st.one_of(
    st.sampled_from(IDS),
    st.integers(-10, 200),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.text(max_size=5),
    st.lists(st.integers(0, 3), max_size=2),
    st.dictionaries(st.sampled_from(["think_cost", "tag", "bogus"]), st.one_of(st.integers(-1, 3), st.text(max_size=2)), max_size=2),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(calls=st.lists(st.tuples(st.sampled_from(["operator", "a001", "a002", "a003"]),
                                st.sampled_from(sorted(METHODS)),
                                st.dictionaries(st.sampled_from(["artifact", "amount", "price", "buyer", "listing",
                                                                 "kind", "agent", "brain", "params", "think_delay",
                                                                 "debtor", "principal", "rate_per_day", "due_in",
                                                                 "contract", "extra"]), JUNK, max_size=4),
                                st.floats(0, 10_000)),
                      min_size=1, max_size=6))
def test_random_junk_is_refused_or_applied_never_a_crash(calls):
    world = setup_world()
    for who, (target, method), raw, dt in calls:
        # Mostly the method's own parameters, sometimes a stray one.
        params = METHODS[(target, method)]
        args = {k: v for k, v in raw.items() if k in params or k == "extra"}
        world.clock.advance(dt)
        before = economy_state(world)
        r = world.waist.perform(who, Invoke(target, method, args), world.clock.now())
        assert r.__class__.__name__ == "Result"
        if not r.ok:
            assert r.error and r.code
            for exc in ("KeyError", "AttributeError", "Traceback"):
                assert exc not in r.error, r.error
            assert economy_state(world) == before, (target, method, args, r)
        assert all_true(world.invariants()), (target, method, args, world.invariants())
