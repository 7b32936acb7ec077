"""The oracle (SPEC §4): anytime bids on artifacts, periodic resolution, minting, UBI.

A bid holds its amount at once; a new bid by the same bidder on the same artifact replaces
the old one (the hold is adjusted); `cancel` releases it. Every `resolution_interval`
seconds from world start (so anyone can compute the next one) the open bids are resolved:
highest first (ties by earlier bid time, then bid id), the top `k` win and all pay one price,
the (k+1)-th highest amount or `min_bid` when there are no more than k bids. Winners'
artifacts are scored 0-100 and `floor(score / mint_ratio)` new scrip goes to their owners,
computed exactly with the ratio as the decimal the world file wrote (`engine.bounds.written`);
a scoring failure refunds that winner's price. The prices paid are shared equally among
the agents who did not win, the remainder one unit each in ascending agent-id order.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ..bounds import scrip, shown, written
from ..errors import Refusal
from ..events import BidCancelled, BidPlaced, OracleResolved, ScripMinted
from ..ids import agent_sort_key
from ..scoring import Scorer, build_scorer
from .base import GenesisArtifact, Param, method

if TYPE_CHECKING:
    from ..ports import Services, TimerHandle

HOLDER = "oracle"
BID = scrip(lambda cfg: cfg.oracle.min_bid)


def _rows(rows: Any, types: tuple) -> list[list[Any]]:
    """Rows of a dumped table, each checked field by field (a journal is hostile input)."""
    if not isinstance(rows, list) or not all(
            isinstance(r, list) and len(r) == len(types) and all(isinstance(v, t) and type(v) is not bool
                                                                  for v, t in zip(r, types)) for r in rows):
        raise ValueError("a dumped table's rows do not have the fields it keeps")
    return rows


def minted_for(score: int, mint_ratio: float) -> int:
    """floor(score / mint_ratio), exact: the ratio as the decimal written, so 100 points
    at a ratio of 1.00000000001 mint 99, not the 100 a float division gives."""
    ratio = written(mint_ratio)
    return (score * ratio.denominator) // ratio.numerator


@dataclass(slots=True)
class Bid:
    id: int
    bidder: str
    artifact_id: str
    amount: int
    t: float


class OracleArtifact(GenesisArtifact):
    id = HOLDER
    description = "Anytime bids on artifacts you own; periodic resolution mints scrip for the winners."

    def __init__(self, world: Services, scorer: Scorer | None = None) -> None:
        super().__init__(world)
        cfg = world.config.oracle
        self.cfg = cfg
        self.scorer = scorer or build_scorer(cfg.scorer)
        self.bids: dict[tuple[str, str], Bid] = {}
        self.resolutions: deque[dict[str, Any]] = deque(maxlen=cfg.keep)
        self.resolved = 0
        self.minted_total = 0
        self._bid_ids = 0
        self._timer: TimerHandle | None = None  # the scheduler's timer for the next resolution

    # -- agents' methods ------------------------------------------------------------------------
    @method("bid", "Bid on an artifact you own for the next resolution; the amount is held now. "
            "A new bid on the same artifact replaces your old one.",
            artifact="artifact id (you must own it)", amount=Param("held now; at least min_bid", BID))
    def bid(self, caller: str, args: dict[str, Any], now: float) -> dict[str, Any]:
        world = self.world
        amount = args["amount"]
        art = world.artifacts.get(args["artifact"])
        if art.owner != caller:
            raise Refusal(f"cannot bid on {art.id}: it is owned by {art.owner}, not {caller}", "not_owner", "artifact")
        if art.kind == "genesis":
            raise Refusal(f"{art.id} is a genesis artifact", "invalid", "artifact")
        key = (caller, art.id)
        old = self.bids.get(key)
        ledger = world.ledger
        have = ledger.scrip[caller]
        more = amount - (0 if old is None else old.amount)
        if more > have:
            raise Refusal(f"insufficient scrip: have {have}, need {more}", "insufficient", "amount")
        # Checked: from here on nothing can refuse.
        ledger.undo.item(self.bids, key)
        ledger.undo.attrs(self, "_bid_ids")
        if old is None:
            ledger.hold(caller, amount, HOLDER)
        elif amount > old.amount:
            ledger.hold(caller, amount - old.amount, HOLDER)
        elif amount < old.amount:
            ledger.release(HOLDER, old.amount - amount, caller)
        self._bid_ids += 1
        # A replacing bid is a new bid: it takes a new id and time for tie-breaking.
        self.bids[key] = Bid(self._bid_ids, caller, art.id, amount, now)
        world.bus.publish(BidPlaced(now, caller, art.id, amount, None if old is None else old.amount))
        world.count("bid")
        return {"bid_id": self._bid_ids, "held": amount, "resolves_in": world.next_resolution_in(now)}

    @method("cancel", "Cancel your open bid on an artifact; the hold is released.", artifact="artifact id")
    def cancel(self, caller: str, args: dict[str, Any], now: float) -> dict[str, int]:
        key = (caller, args["artifact"])
        bid = self.bids.get(key) if isinstance(args["artifact"], str) else None
        if bid is None:
            raise Refusal(f"{caller} has no open bid on {shown(args['artifact'])}", "unknown", "artifact")
        self.world.ledger.undo.item(self.bids, key)
        del self.bids[key]
        self.world.ledger.release(HOLDER, bid.amount, caller)
        self.world.bus.publish(BidCancelled(now, caller, bid.artifact_id, bid.amount, "cancelled"))
        return {"released": bid.amount}

    @method("open_bids", "The open bids of the next resolution, highest first.")
    def open_bids(self, caller: str, args: dict[str, Any], now: float) -> list[dict[str, Any]]:
        return [asdict(b) for b in self.ranked()]

    @method("last_resolution", "The record of the last resolution.")
    def last_resolution(self, caller: str, args: dict[str, Any], now: float) -> dict[str, Any] | None:
        return self.resolutions[-1] if self.resolutions else None

    @method("resolve_now", "Resolve the open bids at once (the schedule is unchanged).", operator_only=True)
    def resolve_now(self, caller: str, args: dict[str, Any], now: float) -> dict[str, Any]:
        return self.resolve(now, trigger="operator")

    # -- resolution -----------------------------------------------------------------------------
    # -- a checkpoint's view of the oracle -------------------------------------------------------
    @property
    def timer(self) -> TimerHandle | None:
        return self._timer

    def dump(self, recent: int | None = None) -> dict[str, Any]:
        """Its books: open bids in order, past resolutions (the last `recent`, or all kept),
        counters, the scorer's memory and whether its timer exists (the calendar has when)."""
        resolutions = list(self.resolutions)
        scorer = self.scorer
        return {
            "bids": [[b.id, b.bidder, b.artifact_id, b.amount, b.t] for b in self.bids.values()],
            "resolved": self.resolved, "minted_total": self.minted_total, "bid_ids": self._bid_ids,
            "resolutions": resolutions if recent is None else resolutions[-recent:] if recent else [],
            "scorer": scorer.memory() if hasattr(scorer, "memory") else None,
            "timer": self._timer is not None,
        }

    def load(self, state: dict[str, Any]) -> None:
        """Take back dumped books, checked first."""
        bids = [Bid(*b) for b in _rows(state["bids"], (int, str, str, int, (float, int)))]
        counts = (state["resolved"], state["minted_total"], state["bid_ids"])
        if not all(type(n) is int and n >= 0 for n in counts) or not isinstance(state["resolutions"], list):
            raise ValueError("the oracle's counters must be whole numbers >= 0, its resolutions a list")
        memory = state.get("scorer")
        if memory is not None and hasattr(self.scorer, "remember"):
            self.scorer.remember(memory)
        self.bids = {(b.bidder, b.artifact_id): b for b in bids}
        self.resolved, self.minted_total, self._bid_ids = counts
        self.resolutions.clear()
        self.resolutions.extend(state["resolutions"])
        if state.get("timer"):
            self._timer = self.world.scheduler.timer(self._scheduled)

    def ranked(self) -> list[Bid]:
        return sorted(self.bids.values(), key=lambda b: (-b.amount, b.t, b.id))

    def start(self) -> None:
        """Resolve every `resolution_interval` seconds from world start (a timer of the
        scheduler, set once the world runs)."""
        if self._timer is None:
            self._timer = self.world.scheduler.call_at(self._next_resolution(self.world.clock.now()), self._scheduled)

    def _next_resolution(self, now: float) -> float:
        interval = self.cfg.resolution_interval
        return (int(now // interval) + 1) * interval

    def _scheduled(self, now: float) -> None:
        self.resolve(now, trigger="schedule")
        if self._timer is not None:  # (set by start, which set this call)
            self._timer.reschedule(self._next_resolution(now))

    def resolve(self, now: float, trigger: str = "schedule") -> dict[str, Any]:
        world = self.world
        ledger = world.ledger
        artifacts = world.artifacts
        k = self.cfg.slots
        undo = ledger.undo
        if undo.on:  # the operator's resolve_now, inside the waist: all of it can be put back
            undo.mapping(self.bids)
            undo.items(self.resolutions)
            undo.attrs(self, "resolved", "minted_total")
            scorer: Any = self.scorer  # a scorer with a memory has remember() and memory()
            if hasattr(scorer, "remember"):
                undo.call(scorer.remember, scorer.memory())
        void: list[dict[str, Any]] = []
        valid: list[Bid] = []
        for bid in self.ranked():
            art = artifacts.by_id.get(bid.artifact_id)
            if art is None or art.owner != bid.bidder:
                # The artifact was deleted or changed hands since the bid: the bid is void.
                ledger.release(HOLDER, bid.amount, bid.bidder)
                world.bus.publish(BidCancelled(now, bid.bidder, bid.artifact_id, bid.amount, "void: no longer owned"))
                void.append({"bidder": bid.bidder, "artifact": bid.artifact_id, "amount": bid.amount})
            else:
                valid.append(bid)
        self.bids.clear()
        winners, losers = valid[:k], valid[k:]
        price = valid[k].amount if len(valid) > k else self.cfg.min_bid
        for bid in losers:
            ledger.release(HOLDER, bid.amount, bid.bidder)
        pool = 0
        minted = 0
        results: list[dict[str, Any]] = []
        for bid in winners:
            ledger.release(HOLDER, bid.amount - price, bid.bidder)
            art = artifacts.by_id[bid.artifact_id]
            try:
                score = int(self.scorer.score(art.id, art.content))
                if not 0 <= score <= 100:
                    raise ValueError(f"score {score} is outside 0-100")
            except Exception as e:  # scoring failed: refund the price, mint nothing
                ledger.release(HOLDER, price, bid.bidder)
                results.append({"bidder": bid.bidder, "artifact": art.id, "bid": bid.amount,
                                "paid": 0, "score": None, "minted": 0, "error": f"{type(e).__name__}: {e}"})
                continue
            pool += price
            mint = minted_for(score, self.cfg.mint_ratio)
            if mint:
                ledger.mint(art.owner, mint)
                world.bus.publish(ScripMinted(now, art.owner, mint, art.id, score))
            minted += mint
            results.append({"bidder": bid.bidder, "artifact": art.id, "bid": bid.amount,
                            "paid": price, "score": score, "minted": mint, "error": None})
        payers = [r["bidder"] for r in results if r["paid"]]
        ubi = self._share_ubi(pool, payers, {b.bidder for b in winners})
        record: dict[str, Any] = {
            "index": self.resolved,
            "t": now,
            "trigger": trigger,
            "bids": len(valid),
            "void": void,
            "slots": k,
            "price": price if winners else None,
            "winners": results,
            "losers": [{"bidder": b.bidder, "artifact": b.artifact_id, "bid": b.amount} for b in losers],
            "minted": minted,
            "ubi": ubi,
        }
        self.resolved += 1
        self.minted_total += minted
        if winners:
            world.count("resolution")
        if minted:
            world.count("mint")
        if ubi["pool"]:
            world.count("ubi")
        self.resolutions.append(record)
        world.bus.publish(OracleResolved(now, record["index"], [r["artifact"] for r in results], price, minted,
                                         ubi["pool"]))
        return record

    def _share_ubi(self, pool: int, payers: list[str], winners: set[str]) -> dict[str, Any]:
        """Share the prices paid equally among agents who did not win (all agents if all
        won); the remainder one unit each in ascending agent-id order."""
        world = self.world
        if pool == 0:
            return {"pool": 0, "recipients": 0, "share": 0, "remainder": 0}
        live = sorted(world.live_ids, key=agent_sort_key)
        recipients = [a for a in live if a not in winners] or live
        if not recipients:  # only the operator bid and no agent lives: refund the prices
            price = pool // len(payers)
            for bidder in payers:
                world.ledger.release(HOLDER, price, bidder)
            return {"pool": 0, "recipients": 0, "share": 0, "remainder": 0, "refunded": pool}
        share, remainder = divmod(pool, len(recipients))
        for i, agent_id in enumerate(recipients):
            amount = share + (1 if i < remainder else 0)
            if amount:
                world.ledger.release(HOLDER, amount, agent_id)
        return {"pool": pool, "recipients": len(recipients), "share": share, "remainder": remainder}
