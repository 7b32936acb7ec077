"""Helpers for the economy tests: calling genesis methods as any principal, a scorer the
test controls, and a snapshot of every piece of economic state a refusal must leave alone."""

from __future__ import annotations

import copy
from dataclasses import asdict
from typing import Any

from ecotest import state

from engine.actions import Invoke, Result
from engine.world import World


def call(world: World, who: str, target: str, method: str, args: dict[str, Any] | Any) -> Result:
    """Invoke `target.method(**args)` as `who` through the narrow waist.

    `World.invoke` takes the caller as a keyword named `principal`, which collides with the
    arguments named `principal` (contracts.offer, contracts.credit), so those go to the
    waist directly: the same path `World.invoke` and every agent take."""
    if isinstance(args, dict) and "principal" not in args:
        return world.invoke(target, method, principal=who, **args)
    return world.waist.perform(who, Invoke(target, method, args), world.clock.now())


def ok(result: Result) -> Any:
    assert result.ok, result
    return result.value


def economy_state(world: World) -> dict[str, Any]:
    """`ecotest.state` plus the oracle's bids, the market's listings and every contract."""
    snap = state(world)
    snap["bids"] = {k: (b.id, b.amount, b.t) for k, b in world.oracle.bids.items()}
    snap["resolutions"] = (world.oracle.resolved, len(world.oracle.resolutions), world.oracle.minted_total)
    snap["listings"] = {k: asdict(v) for k, v in world.market.open.items()}
    snap["closed"] = [asdict(v) for v in world.market.closed]
    snap["by_artifact"] = dict(world.market.by_artifact)
    snap["contracts"] = {k: copy.deepcopy(a.content) for k, a in world.contracts.contracts.items()}
    snap["due"] = sorted(world.contracts._due)
    snap["sliced"] = dict(world.ledger.sliced_micro)
    snap["mechanisms"] = dict(world.mechanisms)
    snap["meta"] = {a.id: dict(a.meta) for a in world.artifacts.by_id.values()}
    return snap


class FixedScorer:
    """Scores each artifact from a table (default `default`); "fail" raises for it."""

    name = "fixed"

    def __init__(self, scores: dict[str, Any] | None = None, default: int = 50) -> None:
        self.scores = dict(scores or {})
        self.default = default
        self.calls: list[str] = []

    def score(self, artifact_id: str, content: Any) -> int:
        self.calls.append(artifact_id)
        s = self.scores.get(artifact_id, self.default)
        if s == "fail":
            raise RuntimeError(f"cannot score {artifact_id}")
        return s
