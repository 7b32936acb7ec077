"""The market (SPEC §5): escrow for selling any artifact.

`list` moves the artifact into the market's custody until it is sold or the listing is
cancelled; `buy` is atomic: everything is checked first, then scrip goes buyer -> seller and
the artifact market -> buyer. Two buyers of one listing: exactly one succeeds (the engine
runs on one event loop and a genesis method never awaits, so a purchase cannot interleave).
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ..bounds import PRICE, shown
from ..errors import Refusal
from ..events import ListingCancelled, ListingCreated, ListingSold
from ..ids import OPERATOR
from .base import GenesisArtifact, Param, method
from .custody import CUSTODIAN, move_artifact

if TYPE_CHECKING:
    from ..ports import Services



@dataclass(slots=True)
class Listing:
    id: str
    seller: str
    artifact_id: str
    artifact_kind: str
    price: int
    buyer: str | None  # only this principal may buy, when set
    t: float
    status: str = "open"  # open | sold | cancelled
    sold_to: str | None = None
    closed_at: float | None = None


def _row(x: Listing) -> list[Any]:
    return [x.id, x.seller, x.artifact_id, x.artifact_kind, x.price, x.buyer, x.t, x.status, x.sold_to, x.closed_at]


_OPTIONAL_STR = (str, type(None))
_TIME = (float, int)
_LISTING = ((str,), (str,), (str,), (str,), (int,), _OPTIONAL_STR, _TIME, (str,), _OPTIONAL_STR, (*_TIME, type(None)))


def _listing(row: Any) -> Listing:
    if not (isinstance(row, list) and len(row) == len(_LISTING)
            and all(type(v) in t for v, t in zip(row, _LISTING))):
        raise ValueError("a dumped listing does not have the fields a listing has")
    return Listing(*row)


class MarketArtifact(GenesisArtifact):
    id = CUSTODIAN
    description = "Escrow: list an artifact you own for a price; buying is atomic."

    def __init__(self, world: Services) -> None:
        super().__init__(world)
        self.open: dict[str, Listing] = {}
        self.closed: deque[Listing] = deque(maxlen=world.config.market.keep)
        self.by_artifact: dict[str, str] = {}  # artifact id -> open listing id
        self._ids = 0
        self.sold = 0

    # -- a checkpoint's view of the market ------------------------------------------------------
    def dump(self, recent: int | None = None) -> dict[str, Any]:
        closed = list(self.closed)
        closed = closed if recent is None else closed[-recent:] if recent else []
        return {"open": [_row(x) for x in self.open.values()],
                "closed": [_row(x) for x in closed],
                "ids": self._ids, "sold": self.sold}

    row = staticmethod(_row)  # a listing as dumped (a checkpoint's writer keeps closed ones' JSON)

    def load(self, state: dict[str, Any]) -> None:
        """Take back dumped books, checked first."""
        open_ = [_listing(r) for r in state["open"]]
        closed = [_listing(r) for r in state["closed"]]
        if not all(type(state[k]) is int and state[k] >= 0 for k in ("ids", "sold")):
            raise ValueError("the market's counters must be whole numbers >= 0")
        self.open = {x.id: x for x in open_}
        self.by_artifact = {x.artifact_id: x.id for x in open_}
        self.closed.clear()
        self.closed.extend(closed)
        self._ids, self.sold = state["ids"], state["sold"]

    def seller_of(self, artifact_id: str) -> str | None:
        listing_id = self.by_artifact.get(artifact_id)
        return None if listing_id is None else self.open[listing_id].seller

    def _listing(self, listing_id: object) -> Listing:
        listing = self.open.get(listing_id) if isinstance(listing_id, str) else None
        if listing is None:
            closed = next((c for c in self.closed if c.id == listing_id), None)
            if closed is not None:
                raise Refusal(f"listing {listing_id} is {closed.status}", "closed", "listing")
            raise Refusal(f"unknown listing {shown(listing_id)}", "unknown", "listing")
        return listing

    @method("list", "Offer an artifact you own for a price; the market holds it until sold or cancelled.",
            optional=("buyer",), artifact="artifact id", price=Param("what the buyer pays", PRICE),
            buyer="only this principal may buy (optional)")
    def list_(self, caller: str, args: dict[str, Any], now: float) -> dict[str, Any]:
        world = self.world
        price = args["price"]
        buyer = args.get("buyer")
        if buyer is not None:
            world.ledger.require(buyer, "buyer")
            if buyer == caller:
                raise Refusal("you cannot restrict a listing to yourself", "invalid", "buyer")
        art = world.artifacts.get(args["artifact"])
        if art.owner != caller:
            raise Refusal(f"cannot list {art.id}: it is owned by {art.owner}, not {caller}", "not_owner", "artifact")
        move_artifact(world, art.id, caller, CUSTODIAN, now)
        undo = world.ledger.undo
        undo.attrs(self, "_ids")
        self._ids += 1
        listing = Listing(f"listing-{self._ids}", caller, art.id, art.kind, price, buyer, now)
        undo.item(self.open, listing.id)
        undo.item(self.by_artifact, art.id)
        self.open[listing.id] = listing
        self.by_artifact[art.id] = listing.id
        world.bus.publish(ListingCreated(now, listing.id, caller, art.id, art.kind, price, buyer))
        return {"listing": listing.id}

    @method("buy", "Buy a listing: its price goes to the seller and the artifact to you, or nothing happens.",
            listing="listing id")
    def buy(self, caller: str, args: dict[str, Any], now: float) -> dict[str, Any]:
        world = self.world
        ledger = world.ledger
        listing = self._listing(args["listing"])
        if listing.seller == caller:
            raise Refusal(f"{listing.id} is your own listing; cancel it instead", "invalid", "listing")
        if listing.buyer is not None and listing.buyer != caller:
            raise Refusal(f"{listing.id} is reserved for {listing.buyer}", "forbidden", "listing")
        have = ledger.scrip[caller]
        if have < listing.price:
            raise Refusal(f"insufficient scrip: have {have}, need {listing.price}", "insufficient")
        art = world.artifacts.get(listing.artifact_id, "listing")
        room = ledger.disk_quota[caller] - ledger.disk_used[caller]
        if art.charged and art.size > room:
            raise Refusal(f"no disk room for {art.id}: {art.size} bytes, {room} free", "quota")
        # Everything is checked: from here on nothing can refuse.
        if listing.price:
            ledger.transfer_scrip(caller, listing.seller, listing.price)
        move_artifact(world, art.id, CUSTODIAN, caller, now)
        self._close(listing, "sold", now, caller)
        ledger.undo.attrs(self, "sold")
        self.sold += 1
        world.count("listing_sold")
        world.bus.publish(ListingSold(now, listing.id, listing.seller, caller, art.id, art.kind, listing.price))
        return {"artifact": art.id, "paid": listing.price}

    @method("cancel", "Withdraw your listing; the artifact comes back to you.", listing="listing id")
    def cancel(self, caller: str, args: dict[str, Any], now: float) -> None:
        listing = self._listing(args["listing"])
        if listing.seller != caller and caller != OPERATOR:
            raise Refusal(f"{listing.id} is {listing.seller}'s listing, not {caller}'s", "not_owner", "listing")
        self._return(listing, now)

    def withdraw(self, artifact_id: str, now: float) -> None:
        """Close the open listing of an artifact that can no longer be sold (a loan repaid
        while its claim was listed): it goes back to the seller, as on a cancel."""
        listing_id = self.by_artifact.get(artifact_id)
        if listing_id is not None:
            self._return(self.open[listing_id], now)

    def _return(self, listing: Listing, now: float) -> None:
        move_artifact(self.world, listing.artifact_id, CUSTODIAN, listing.seller, now)
        self._close(listing, "cancelled", now, None)
        self.world.bus.publish(ListingCancelled(now, listing.id, listing.seller, listing.artifact_id))

    @method("listings", "Open listings, optionally of one artifact kind.", optional=("kind",),
            kind="artifact kind (data, code, config, rate, contract)")
    def listings(self, caller: str, args: dict[str, Any], now: float) -> list[dict[str, Any]]:
        kind = args.get("kind")
        if kind is not None and not isinstance(kind, str):
            raise Refusal(f"kind must be an artifact kind such as 'rate' or 'config', got {shown(kind)}", "invalid", "kind")
        return [asdict(x) for x in self.open.values() if kind is None or x.artifact_kind == kind]

    def _close(self, listing: Listing, status: str, now: float, buyer: str | None) -> None:
        undo = self.world.ledger.undo
        if undo.on:
            undo.attrs(listing, "status", "sold_to", "closed_at")
            undo.item(self.open, listing.id)
            undo.item(self.by_artifact, listing.artifact_id)
            undo.items(self.closed)
        listing.status = status
        listing.sold_to = buyer
        listing.closed_at = now
        del self.open[listing.id]
        self.by_artifact.pop(listing.artifact_id, None)
        self.closed.append(listing)
