"""The panels the switcher offers (key, id, title) and the counts shown beside their titles:
what each counts, said once here for the switcher and the help screen alike."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from engine.ids import FROZEN

if TYPE_CHECKING:
    from engine.world import World

PANELS: tuple[tuple[str, str, str], ...] = (
    ("1", "agents", "Agents"),
    ("2", "containers", "Containers"),
    ("3", "oracle", "Oracle"),
    ("4", "rights", "Rights"),
    ("5", "contracts", "Contracts"),
    ("6", "events", "Events"),
    ("7", "metrics", "Metrics"),
)

# What the count beside each title means (the help screen's "Switcher counts").
COUNTS: dict[str, str] = {
    "agents": "live agents (not stopped), and how many of them are frozen in compute debt",
    "containers": "agents' sandboxes with a reading, and OOM kills among them",
    "oracle": "open bids waiting for the next resolution",
    "rights": "listings for sale on the market (config rights, rate slices, claims, data)",
    "contracts": "open loans (offered or active), and defaulted ones still owing",
}

# A badge is a list of renderings, longest first: the switcher shows the longest that fits
# on one line for every panel, down to bare numbers and then none.
Badge = list[str]


def badges(world: World, readings: Mapping[str, Any]) -> dict[str, Badge]:
    frozen = len(world.frozen)
    live = len(world.live_ids)
    oom = sum(s.oom_kills for s in readings.values())
    statuses = [a.content["status"] for a in world.contracts.contracts.values()]
    open_ = sum(1 for s in statuses if s in ("offered", "active"))
    defaulted = statuses.count("defaulted")
    bids = len(world.oracle.bids)
    listed = len(world.market.open)

    def tiers(main: int, unit: str, alert: int = 0, alert_unit: str = "", short_unit: str | None = None) -> Badge:
        # In words with the alert; in words without it (the header shows the frozen, the
        # panels the OOM kills and defaults); the bare number.
        full = f"{main} {unit}" + (f" · {alert} {alert_unit}" if alert else "")
        short_unit = unit if short_unit is None else short_unit
        return [full, f"{main} {short_unit}".rstrip(), str(main)]

    out = {
        "agents": tiers(live, "live", frozen, FROZEN),
        "oracle": tiers(bids, "bids" if bids != 1 else "bid"),
        "rights": tiers(listed, "for sale"),
        "contracts": tiers(open_, "open", defaulted, "defaulted"),
    }
    if readings:
        out["containers"] = tiers(len(readings), "sandboxes" if len(readings) != 1 else "sandbox", oom, "OOM",
                                    short_unit="")
    return out


def agents_named(world: World, kind: str, key: str) -> list[str]:
    """The agents a selected row names (kind as in Panel.SELECTS), those it concerns most
    first: a bid's bidder, a listing's seller, a loan's debtor, lender and holder."""
    ids: list[str | None] = []
    if kind in ("agent", "container", "config"):
        ids = [key]
    elif kind == "bid":
        ids = [b.bidder for b in world.oracle.ranked() if b.artifact_id == key]
    elif kind == "resolution":
        record = next((r for r in world.oracle.resolutions if f"#{r['index']}" == key), None)
        ids = [w["bidder"] for w in record["winners"]] if record else []
    elif kind == "slice":
        art = world.artifacts.by_id.get(key)
        ids = [world.market.seller_of(key) if art.owner == "market" else art.owner] if art else []
    elif kind == "listing":
        market = world.market
        x = market.open.get(key) or next((c for c in market.closed if c.id == key), None)
        ids = [x.seller, x.buyer, x.sold_to] if x else []
    elif kind == "contract":
        art = world.contracts.contracts.get(key)
        if art is not None:
            ids = [art.content["debtor"], art.content["lender"], world.contracts.holder(key)]
    agents = world.agents
    return list(dict.fromkeys(i for i in ids if i is not None and i in agents))
