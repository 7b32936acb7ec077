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


def full_state(world: World) -> str:
    """Everything the journal would write about a world (`engine.persist`'s rows), as plain
    data, minus the statistics a refusal itself moves (the refusal counter, the event
    sequence and counts): what a refused call must leave exactly as it was. Buckets are
    compared raw, so call `settle_buckets` first (an accrual at the same instant is then a
    no-op, and any other change shows)."""
    from engine.persist import BALANCE_COLUMNS, agent_row, artifact_row, services_rows, world_rows

    ledger = world.ledger
    rows = world_rows(world)
    rows["counters"] = {k: v for k, v in rows["counters"].items() if k not in ("refusals", "bus_seq", "event_counts")}
    return repr({
        "balances": {
            p: dict(zip(BALANCE_COLUMNS, (ledger.scrip[p], ledger.rate_micro[p], ledger.sliced_micro.get(p, 0),
                                          b.capacity, b.balance, b.last_update, ledger.disk_quota[p],
                                          ledger.disk_used[p])))
            for p, b in ledger.buckets.items()
        },
        "rate": {p: b.rate for p, b in ledger.buckets.items()},
        "sliced": dict(ledger.sliced_micro),
        # sorted: a put-back key comes back at the end of its dict; order is not state
        "artifacts": {aid: repr(artifact_row(world.artifacts.by_id[aid])) for aid in sorted(world.artifacts.by_id)},
        "store_counter": world.artifacts._counter,
        "agents": {aid: repr(agent_row(a, i)) for i, (aid, a) in enumerate(world.agents.items())},
        "live": list(world.live_ids),
        "frozen": list(world.frozen),
        "services": repr(services_rows(world)),
        "oracle_bids": repr(sorted(world.oracle.bids.items())),
        "resolutions": repr(list(world.oracle.resolutions)),
        "contracts": {cid: repr(world.contracts.contracts[cid].content) for cid in sorted(world.contracts.contracts)},
        "due": sorted(world.contracts._due),
        "market": (repr(sorted(world.market.open.items())), repr(list(world.market.closed)),
                   sorted(world.market.by_artifact.items())),
        "world": rows,
        "speed": world.clock.speed,
        "paused": world.paused,
    })  # one string: the live dicts it shows cannot change it afterwards


def settle_buckets(world: World) -> None:
    """Bring every bucket up to now (see `full_state`)."""
    now = world.clock.now()
    for b in world.ledger.buckets.values():
        b.accrue(now)
