"""Scripted brains that use the whole economy: the oracle, the market, rights and loans.

builder   writes distinctive artifacts and bids on them at the oracle
trader    slices its compute rate and sells slices; buys rights (rate slices, config
          rights, debt claims); reconfigures agents whose config right it bought
lender    offers loans to agents with a clean credit record; sells some claims
borrower  accepts loans offered to it; reliable ones repay before due, others spend the
          money and default
"""

from __future__ import annotations

from ..actions import Action, Delete, Invoke, Sleep, Write
from ..brain_params import BorrowerParams, BuilderParams, LenderParams, TraderParams
from .base import Brain

VOCAB = (
    "ledger oracle market bid scrip compute rate right loan claim holder debtor lender "
    "artifact owner config brain slice rescue freeze thaw debt interest credit default "
    "resolution price winner slot mint dividend budget quota sandbox container memory cpu "
    "agent world time clock bucket capacity accrual spend transfer escrow custody listing "
    "buyer seller trade value score distinct novel signal noise model prompt token"
).split()


class Builder(Brain[BuilderParams]):
    """Writes an artifact, bids on it, waits for the resolution, repeats."""

    name = "builder"
    summary = "writes artifacts and bids on them at the oracle"
    memory = ("pending", "written")

    Params = BuilderParams

    def __init__(self, params, rng) -> None:
        super().__init__(params, rng)
        self.pending: str | None = None  # written, not yet bid on
        self.written: list[str] = []

    def decide(self, view) -> Action:
        p = self.params
        last = view.last_result
        if last is not None and last.ok and isinstance(last.value, dict) and "version" in last.value:
            self.pending = last.value["artifact_id"]
            self.written.append(self.pending)
        if self.pending is None and len(self.written) > p.keep_artifacts:
            old = self.written.pop(0)
            if view.open_bid(old) is None and old in view.owned("data"):
                return Delete(old)
        if self.pending is not None:
            artifact, self.pending = self.pending, None
            amount = min(p.max_bid, max(view.min_bid, int(view.scrip * p.bid_share)))
            if view.scrip >= amount:
                return Invoke("oracle", "bid", {"artifact": artifact, "amount": amount})
        if any(view.open_bid(a) for a in view.owned("data")):
            return Sleep(until_event="oracle_resolved", timeout=120.0)
        words = " ".join(self.rng.choice(VOCAB) for _ in range(p.words))
        return Write(f"{view.id} at {view.wall_time}: {words} #{self.rng.randrange(10**9)}")


class Trader(Brain[TraderParams]):
    """Makes a market in rights."""

    name = "trader"
    summary = "slices and sells compute rate; buys rights; reconfigures agents it controls"
    memory = ("configured", "listed_own_config", "made")

    Params = TraderParams

    def __init__(self, params, rng) -> None:
        super().__init__(params, rng)
        self.configured: set[str] = set()
        self.listed_own_config = False
        self.made: list[str] = []  # slices it cut itself: the ones it sells

    def decide(self, view) -> Action:
        p = self.params
        last = view.last_result
        if last is not None and last.ok and isinstance(last.value, dict) and set(last.value) == {"artifact", "rate"}:
            made = last.value.get("artifact")  # the answer of rights.slice_rate
            if isinstance(made, str) and made.startswith("rate-") and made not in self.made:
                self.made.append(made)
        # 1. Agents whose config right it bought follow its settings from their next turn.
        for agent_id in view.config_rights():
            if agent_id not in self.configured:
                self.configured.add(agent_id)
                return Invoke("rights", "configure", {"agent": agent_id, "brain": "philanthropist",
                                                      "params": {"keep": 3, "gift": 1}})
        # 2. Buy the cheapest affordable right listed by someone else.
        kinds = ("config", "contract") if view.rate >= p.want_rate else ("rate", "config", "contract")
        wanted = [x for x in view.listings() if x.seller != view.id and x.artifact_kind in kinds
                  and x.price <= min(p.budget, view.scrip) and x.buyer in (None, view.id)
                  and (x.artifact_kind != "contract" or view.owed(x.artifact_id) > x.price)]  # a claim worth its price
        if wanted and self.rng.random() < 0.7:
            best = min(wanted, key=lambda x: (x.price, x.id))
            return Invoke("market", "buy", {"listing": best.id})
        # 3. Sell: its own config right once, then rate slices it owns, then make a slice.
        if p.sell_own_config and not self.listed_own_config and view.id not in view.config_rights():
            self.listed_own_config = True
            return Invoke("market", "list", {"artifact": f"config:{view.id}", "price": p.config_price})
        owned = set(view.owned("rate"))
        for slice_id in self.made:
            if slice_id in owned:
                self.made.remove(slice_id)
                return Invoke("market", "list", {"artifact": slice_id, "price": p.ask})
        if view.free_rate() > 2 * p.slice and self.rng.random() < 0.5:
            return Invoke("rights", "slice_rate", {"amount": p.slice})
        return Sleep(until_event=("listing_created", "listing_sold"), timeout=p.patience)


class Lender(Brain[LenderParams]):
    """Lends to agents with a clean credit record; sometimes sells a claim."""

    name = "lender"
    summary = "offers loans, collects, sells some claims"

    Params = LenderParams

    def decide(self, view) -> Action:
        p = self.params
        mine = view.contracts("lender")
        open_ = [c for c in mine if c[1]["status"] in ("offered", "active")]
        held = [cid for cid, c in view.contracts("holder") if c["status"] == "active" and cid in view.owned("contract")]
        if held and self.rng.random() < p.sell_claims:
            return Invoke("market", "list", {"artifact": held[0], "price": p.claim_price})
        if len(open_) < p.max_open and view.scrip >= p.principal + p.reserve:
            candidates = [a for a in view.others_with_prefix(p.borrowers) if view.credit(a)["defaulted"] == 0
                          and not any(c["debtor"] == a for _, c in open_)]
            if candidates:
                debtor = candidates[int(self.rng.random() * len(candidates))]
                return Invoke("contracts", "offer", {"debtor": debtor, "principal": p.principal,
                                                     "rate_per_day": p.rate_per_day, "due_in": p.due_in})
        return Sleep(until_event="loan", timeout=60.0)


class Borrower(Brain[BorrowerParams]):
    """Accepts loans offered to it; reliable ones repay, the others spend and default."""

    name = "borrower"
    summary = "accepts loans; repays (or not)"

    Params = BorrowerParams

    def decide(self, view) -> Action:
        p = self.params
        soonest = None
        for cid, c in view.contracts("debtor"):
            if c["status"] == "offered":
                return Invoke("contracts", "accept", {"contract": cid})
            if c["status"] in ("active", "defaulted") and p.reliable:
                owed = view.owed(cid)
                # It keeps the money as long as it can, then repays (interest has accrued).
                due_soon = c["status"] == "defaulted" or c["due"] - view.now <= p.margin
                if due_soon and 0 < owed <= view.scrip:
                    return Invoke("contracts", "repay", {"contract": cid, "amount": owed})
                if c["status"] == "active":
                    until = c["due"] - p.margin - view.now
                    soonest = until if soonest is None else min(soonest, until)
        if not p.reliable and view.scrip > 0:  # spends what it borrowed
            other = view.random_other()
            if other is not None:
                return Invoke("ledger", "transfer", {"to": other, "amount": max(1, view.scrip // 2)})
        timeout = 60.0 if soonest is None or soonest <= 0 else min(60.0, soonest)
        return Sleep(until_event=("loan", "scrip_transferred", "scrip_minted"), timeout=timeout, only_mine=True)
