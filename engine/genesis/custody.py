"""Moving an artifact from one owner to another, with what its kind implies: a rate
slice's rate moves with it, a loan is a claim to sell only once accepted, and a change of
hands (not the market's custody, not a cancelled listing) is counted and remembered as
the artifact's `holder`. The accounts service's transfers and the market's listings,
sales and returns all move artifacts through here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import Refusal
from ..events import ArtifactTransferred, RateTransferred
from ..ledger import MICRO

if TYPE_CHECKING:
    from ..artifacts import Artifact
    from ..ports import Services

CUSTODIAN = "market"  # the one service that may hold others' artifacts (listed for sale)


def move_artifact(world: Services, artifact_id: str, frm: str, to: str, now: float) -> Artifact:
    """Change an artifact's owner. Everything that can refuse is checked before anything
    changes; the changes are undoable (the waist's undo log)."""
    art = world.artifacts.get(artifact_id)
    if to in world.services and to != CUSTODIAN:
        raise Refusal(f"{to} is a service and cannot own artifacts", "invalid", "to")
    if (art.kind == "contract" and art.content["status"] not in ("active", "defaulted")
            and not (frm == CUSTODIAN and to == world.market.seller_of(artifact_id))):  # (a return is fine)
        raise Refusal(f"{art.id} is {art.content['status']}: only an accepted loan is a claim to sell", "invalid", "artifact")
    world.artifacts.transfer(artifact_id, frm, to, now)
    world.bus.publish(ArtifactTransferred(now, art.id, frm, to))
    if art.kind == "rate":
        micro = art.content["micro"]
        world.ledger.move_slice(frm, to, micro, now)
        world.bus.publish(RateTransferred(now, frm, to, micro / MICRO))
        world.rate_changed(frm)
        world.rate_changed(to)
        if to != CUSTODIAN:
            world.count("rate_moved")
    world.ledger.undo.item(art.meta, "holder")
    if to != CUSTODIAN:
        # A change of hands: custody by the market and a cancelled listing are not.
        previous = art.meta.get("holder", frm)
        if previous != to:
            art.meta["holder"] = to
            if art.kind == "config":
                world.count("config_right_changed_hands")
            elif art.kind == "contract":
                world.count("claim_changed_hands")
    elif "holder" not in art.meta:
        art.meta["holder"] = frm
    return art


__all__ = ["CUSTODIAN", "move_artifact"]
