"""A world's state as rows, and a world rebuilt from them (for the journal and resume).

Each entity is one row of JSON under a key, grouped in tables: principals (balances and
buckets), artifacts, agents, services (oracle, market, contracts) and world (totals,
counters, metrics). `StateCapture.changes()` returns only the rows that changed since the
last capture, found by comparing cheap per-entity signatures, so committing a large world
every 100 ms costs little. `restore(world, tables)` puts the rows back into a fresh world.

What is deliberately not kept: a brain's private memory and random stream (brains are
rebuilt from their config, reseeded, and recover from what they observe), sandboxes
(restarted lazily on the next code run), and the stats of the last seconds. The oracle's
scorer memory is kept: a resumed world scores (and so mints) as the running one would.
"""

from __future__ import annotations

import json
from collections import deque
from typing import TYPE_CHECKING, Any

from .agent import Agent
from .artifacts import Artifact
from .bucket import TokenBucket
from .genesis.market import Listing
from .genesis.oracle import Bid

if TYPE_CHECKING:
    from .world import World

TABLES = ("artifacts", "agents", "services", "world")  # rows of JSON under a key
# Balances change with every action, so they are typed columns: the signature compared at
# each commit is itself the row written, and nothing is encoded.
BALANCE_COLUMNS = ("scrip", "rate_micro", "sliced_micro", "capacity", "balance", "last_update", "disk_quota", "disk_used")


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), default=str)


# -- capture ------------------------------------------------------------------------------
def artifact_row(a: Artifact) -> dict[str, Any]:
    return {
        "id": a.id, "kind": a.kind, "owner": a.owner, "content": a.content, "created": a.created,
        "updated": a.updated, "size": a.size, "version": a.version, "meta": a.meta, "charged": a.charged,
    }


def agent_row(a: Agent, order: int) -> dict[str, Any]:
    return {
        "order": order, "parent": a.parent, "config": a.config_artifact.id, "actions": a.actions,
        "refused": a.refused, "failures": a.total_failures, "times_frozen": a.times_frozen,
        "paused": a.paused, "crashed": a.crashed, "stopped": a.stopped, "last_error": a.last_error,
    }


def services_rows(world: World) -> dict[str, Any]:
    oracle, market, contracts = world.oracle, world.market, world.contracts
    return {
        "oracle": {
            "bids": [[b.id, b.bidder, b.artifact_id, b.amount, b.t] for b in oracle.bids.values()],
            "resolved": oracle.resolved, "minted_total": oracle.minted_total, "bid_ids": oracle._bid_ids,
            "resolutions": list(oracle.resolutions)[-20:],
        },
        "market": {
            "open": [_listing(x) for x in market.open.values()],
            "closed": [_listing(x) for x in list(market.closed)[-100:]],
            "ids": market._ids, "sold": market.sold,
        },
        "contracts": {"ids": contracts._ids, "credit": contracts.credit, "settled": list(contracts._settled),
                      "retired": contracts.retired},
    }


def _listing(x: Listing) -> list[Any]:
    return [x.id, x.seller, x.artifact_id, x.artifact_kind, x.price, x.buyer, x.t, x.status, x.sold_to, x.closed_at]


def world_rows(world: World) -> dict[str, Any]:
    ledger = world.ledger
    m = world.metrics
    return {
        "clock": {"now": world.clock.now(), "paused": world.paused},
        "ledger": {
            "total_rate_micro": ledger.total_rate_micro, "held": ledger.held, "initial_scrip": ledger.initial_scrip,
            "minted": ledger.minted, "llm_budget": ledger.llm_budget, "llm_spent": ledger.llm_spent,
            "moved": ledger.moved,
        },
        "counters": {
            "ids": world._counters, "mechanisms": world.mechanisms, "refusals": world.waist.refusals,
            "bus_seq": world.bus.seq, "event_counts": dict(world.bus.counts),
        },
        "metrics": {
            "start": m._start, "actions_at_start": m._actions_at_start, "minted_at_start": m._minted_at_start,
            "index": m.index, "base": m.base,
        },
    }


class StateCapture:
    """Finds what changed since the last capture and renders only that as rows."""

    def __init__(self, world: World, counters_every: int = 10) -> None:
        self.world = world
        self._sig: dict[str, dict[str, Any]] = {t: {} for t in (*TABLES, "balances")}
        self._counters_every = counters_every
        self._n = 0
        self._scorer_mark: int | None = None

    def changes(self) -> dict[str, dict[str, Any]]:
        """{table: {key: row, or None for a deleted row}} since the last call: JSON text for
        the JSON tables, a tuple of BALANCE_COLUMNS for `balances`."""
        world = self.world
        out: dict[str, dict[str, Any]] = {t: {} for t in (*TABLES, "balances")}
        ledger = world.ledger
        # Agents' counters are statistics, not state: written every few commits, while what
        # changes how an agent runs (paused, crashed, stopped) is written at once.
        counters = self._n % self._counters_every == 0
        self._n += 1

        sig = self._sig["balances"]
        rate_micro, sliced, used, quota = ledger.rate_micro, ledger.sliced_micro, ledger.disk_used, ledger.disk_quota
        changed = out["balances"]
        for p, b in ledger.buckets.items():
            row = (ledger.scrip[p], rate_micro[p], sliced.get(p, 0), b.capacity, b.balance, b.last_update,
                   quota[p], used[p])
            if sig.get(p) != row:
                sig[p] = row
                changed[p] = row

        sig = self._sig["artifacts"]
        by_id = world.artifacts.by_id
        for aid, a in by_id.items():
            s = (a.version, a.owner, a.updated, len(a.meta))
            if sig.get(aid) != s:
                sig[aid] = s
                out["artifacts"][aid] = _dumps(artifact_row(a))
        for aid in [k for k in sig if k not in by_id]:
            del sig[aid]
            out["artifacts"][aid] = None

        sig = self._sig["agents"]
        for i, (aid, a) in enumerate(world.agents.items()):
            flags = (a.paused, a.crashed, a.stopped, a.last_error)
            stats = (a.actions, a.refused, a.total_failures, a.times_frozen)
            old = sig.get(aid)
            if old is None or old[0] != flags or (counters and old[1] != stats):
                sig[aid] = (flags, stats)
                out["agents"][aid] = _dumps(agent_row(a, i))

        windows = world.metrics.windows
        if windows and sig_window(self._sig["world"]) != windows[-1]["index"]:
            self._sig["world"]["last_window"] = windows[-1]["index"]
            out["world"]["windows"] = _dumps(list(windows)[-200:])
        # The oracle's scorer remembers what it scored (duplicates score 0 for ever): written
        # when that changes, once a resolution, not compared at every commit.
        scorer = world.oracle.scorer
        if hasattr(scorer, "memory") and scorer.memory_mark() != self._scorer_mark:
            self._scorer_mark = scorer.memory_mark()
            out["services"]["scorer"] = _dumps(scorer.memory())
        for table, rows in (("services", services_rows(world)), ("world", world_rows(world))):
            sig = self._sig[table]
            for key, row in rows.items():
                text = _dumps(row)
                if sig.get(key) != text:
                    sig[key] = text
                    out[table][key] = text
        return out


# -- restore -------------------------------------------------------------------------------
def sig_window(sig: dict[str, Any]) -> int | None:
    return sig.get("last_window")


def restore(world: World, tables: dict[str, dict[str, Any]]) -> None:
    """Put saved rows into a world built from the same config with no agents yet."""
    rows = {t: {k: json.loads(v) for k, v in tables.get(t, {}).items()} for t in TABLES}
    ledger = world.ledger
    w = rows["world"]
    led = w["ledger"]
    ledger.total_rate_micro = led["total_rate_micro"]
    ledger.held = dict(led["held"])
    ledger.initial_scrip = led["initial_scrip"]
    ledger.minted = led["minted"]
    ledger.llm_budget = led["llm_budget"]
    ledger.llm_spent = led["llm_spent"]
    ledger.moved = led.get("moved", 0)

    for p, values in tables["balances"].items():
        r = dict(zip(BALANCE_COLUMNS, values))
        ledger.scrip[p] = r["scrip"]
        ledger.rate_micro[p] = r["rate_micro"]
        if r["sliced_micro"]:
            ledger.sliced_micro[p] = r["sliced_micro"]
        bucket = TokenBucket(r["rate_micro"] / 1_000_000, r["capacity"], r["last_update"])
        bucket.balance = r["balance"]
        ledger.buckets[p] = bucket
        ledger.disk_quota[p] = r["disk_quota"]
        ledger.disk_used[p] = r["disk_used"]

    store = world.artifacts
    for aid, r in rows["artifacts"].items():
        store.by_id[aid] = Artifact(
            r["id"], r["kind"], r["owner"], r["content"], r["created"], r["updated"], r["size"],
            r["version"], r["meta"], r["charged"],
        )
    store._counter = max([int(a.rsplit("-", 1)[1]) for a in store.by_id if a.rsplit("-", 1)[-1].isdigit()] or [0])

    for aid, r in sorted(rows["agents"].items(), key=lambda kv: kv[1]["order"]):
        agent = Agent(world, aid, store.by_id[r["config"]], r["parent"])
        agent.actions, agent.refused = r["actions"], r["refused"]
        agent.total_failures, agent.times_frozen = r["failures"], r["times_frozen"]
        agent.paused, agent.crashed, agent.stopped = r["paused"], r["crashed"], r["stopped"]
        agent.last_error = r["last_error"]
        agent.held = world.paused or agent.paused or agent.crashed or agent.stopped
        world.agents[aid] = agent
        if not agent.stopped:
            world.live_ids.append(aid)

    s = rows["services"]
    oracle = world.oracle
    oracle.bids = {(b[1], b[2]): Bid(*b) for b in s["oracle"]["bids"]}
    oracle.resolved = s["oracle"]["resolved"]
    oracle.minted_total = s["oracle"]["minted_total"]
    oracle._bid_ids = s["oracle"]["bid_ids"]
    oracle.resolutions.extend(s["oracle"]["resolutions"])
    if "scorer" in s and hasattr(oracle.scorer, "remember"):
        oracle.scorer.remember(s["scorer"])
    market = world.market
    for x in s["market"]["open"]:
        listing = Listing(*x)
        market.open[listing.id] = listing
        market.by_artifact[listing.artifact_id] = listing.id
    market.closed.extend(Listing(*x) for x in s["market"]["closed"])
    market._ids, market.sold = s["market"]["ids"], s["market"]["sold"]
    contracts = world.contracts
    contracts._ids = s["contracts"]["ids"]
    contracts.credit = {k: dict(v) for k, v in s["contracts"].get("credit", {}).items()}
    contracts.retired = s["contracts"].get("retired", 0)
    contracts._settled.extend(c for c in s["contracts"].get("settled", []) if c in store.by_id)
    for aid, art in store.by_id.items():
        if art.kind == "contract":
            contracts.contracts[aid] = art
            if art.content["status"] == "active":
                contracts._due.append((art.content["due"], aid))
    contracts._due.sort()

    c = w["counters"]
    world._counters = dict(c["ids"])
    world.mechanisms.update(c["mechanisms"])
    world.waist.refusals = c["refusals"]
    world.bus.seq = c["bus_seq"]
    world.bus.counts.update(c["event_counts"])
    m = w["metrics"]
    metrics = world.metrics
    metrics._start, metrics._actions_at_start = m["start"], m["actions_at_start"]
    metrics._minted_at_start, metrics.index = m["minted_at_start"], m["index"]
    # A journal from before these counters: they count from the resume.
    metrics.base = dict(m["base"]) if "base" in m else metrics.counters()
    metrics.windows = deque(w.get("windows", []), maxlen=metrics.windows.maxlen)
    if w["clock"]["paused"]:
        world.set_paused(True)
