"""A world's state as rows, and a world rebuilt from them (for the journal and resume).

Each entity is one row of JSON under a key, grouped in tables: principals (balances and
buckets), artifacts, agents, services (oracle, market, contracts) and world (totals,
counters, metrics). `StateCapture.changes()` returns only the rows that changed since the
last capture, found by comparing cheap per-entity signatures, so committing a large world
every 100 ms costs little. `restore(world, tables)` puts the rows back into a fresh world.

These rows are the journal's durable "now", committed every 100 ms; they do not keep a
brain's memory and random stream or the scheduler's calendar (a world rebuilt from them
has its brains rebuilt from their configs, reseeded, and every agent queued afresh).
Checkpoints (engine/checkpoint.py) keep everything, at a world-time cadence; a resume
uses one when it is the committed world (engine/resume.py). The oracle's scorer memory is
kept here too: a resumed world scores (and so mints) as the running one would.

Both are composed from each part's own `dump()`/`load()`: nothing here writes another
module's private state.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .agent import Agent
from .artifacts import Artifact
from .ledger import MICRO
from .plain import encode

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
    oracle = world.oracle.dump(recent=20)
    del oracle["scorer"]  # its own row, written when it changes (see StateCapture)
    contracts = world.contracts.dump()
    del contracts["contracts"]  # the contract artifacts are rows of their own
    return {"oracle": oracle, "market": world.market.dump(recent=100), "contracts": contracts}


def world_rows(world: World) -> dict[str, Any]:
    ledger = world.ledger
    metrics = world.metrics.dump()
    del metrics["windows"]  # their own row, written when one closes
    state = world.dump_state()
    return {
        "clock": {"now": world.clock.now(), "paused": world.paused},
        "ledger": {
            "total_rate_micro": ledger.total_rate_micro, "held": ledger.held, "initial_scrip": ledger.initial_scrip,
            "minted": ledger.minted, "llm_budget": ledger.llm_budget, "llm_spent": ledger.llm_spent,
            "moved": ledger.moved,
        },
        "counters": {
            "ids": state["ids"], "mechanisms": state["mechanisms"], "refusals": world.waist.refusals,
            "bus_seq": world.bus.seq, "event_counts": dict(world.bus.counts),
        },
        "metrics": metrics,
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
        for i, (aid, agent) in enumerate(world.agents.items()):
            flags = (agent.paused, agent.crashed, agent.stopped, agent.last_error)
            stats = (agent.actions, agent.refused, agent.total_failures, agent.times_frozen)
            old = sig.get(aid)
            if old is None or old[0] != flags or (counters and old[1] != stats):
                sig[aid] = (flags, stats)
                out["agents"][aid] = _dumps(agent_row(agent, i))

        windows = world.metrics.windows
        if windows and sig_window(self._sig["world"]) != windows[-1]["index"]:
            self._sig["world"]["last_window"] = windows[-1]["index"]
            out["world"]["windows"] = _dumps(list(windows)[-200:])
        # The oracle's scorer remembers what it scored (duplicates score 0 for ever): written
        # when that changes, once a resolution, not compared at every commit.
        scorer: Any = world.oracle.scorer  # a scorer with a memory has memory() and memory_mark()
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
    """Put saved rows into a world built from the same config with no agents yet, through
    each part's `load` (rows from older journals lack a few fields: derived here)."""
    rows = {t: {k: json.loads(v) for k, v in tables.get(t, {}).items()} for t in TABLES}
    w = rows["world"]
    led = w["ledger"]
    accounts = []
    for p, values in tables["balances"].items():
        r = dict(zip(BALANCE_COLUMNS, values))
        accounts.append([p, r["scrip"], r["rate_micro"], r["sliced_micro"] or 0, r["rate_micro"] / MICRO,
                         r["capacity"], r["balance"], r["last_update"], r["disk_quota"], r["disk_used"]])
    world.ledger.load({**led, "moved": led.get("moved", 0), "accounts": accounts})

    store = world.artifacts
    arts = rows["artifacts"]
    counter = max([int(a.rsplit("-", 1)[1]) for a in arts if a.rsplit("-", 1)[-1].isdigit()] or [0])
    store.load({"counter": counter, "artifacts": [
        [r["id"], r["kind"], r["owner"], encode(r["content"]), r["created"], r["updated"], r["size"], r["version"],
         encode(r["meta"]), r["charged"]] for r in arts.values()]})

    live = []
    for aid, r in sorted(rows["agents"].items(), key=lambda kv: kv[1]["order"]):
        agent = Agent(world, aid, store.by_id[r["config"]], r["parent"])
        agent.actions, agent.refused = r["actions"], r["refused"]
        agent.total_failures, agent.times_frozen = r["failures"], r["times_frozen"]
        agent.paused, agent.crashed, agent.stopped = r["paused"], r["crashed"], r["stopped"]
        agent.last_error = r["last_error"]
        agent.held = world.paused or agent.paused or agent.crashed or agent.stopped
        world.agents[aid] = agent
        if not agent.stopped:
            live.append(aid)

    s = rows["services"]
    world.oracle.load({**s["oracle"], "scorer": s.get("scorer"), "timer": False})
    world.market.load(s["market"])
    contracts = [aid for aid, art in store.by_id.items() if art.kind == "contract"]
    due = sorted([art.content["due"], aid] for aid in contracts
                 if (art := store.by_id[aid]).content["status"] == "active")
    c = s["contracts"]
    world.contracts.load({"contracts": contracts, "due": due, "credit": c.get("credit", {}), "retired": c.get("retired", 0),
                          "settled": [x for x in c.get("settled", []) if x in store.by_id], "ids": c["ids"],
                          "timer": False})

    counters = w["counters"]
    world.load_state({"seed": world.seed, "paused": False, "started": False, "ids": counters["ids"],
                      "mechanisms": counters["mechanisms"], "live": live, "frozen": []})
    world.waist.load({"refusals": counters["refusals"], "engine_errors": 0})
    world.bus.load({"seq": counters["bus_seq"], "counts": {**world.bus.counts, **counters["event_counts"]},
                    "wakers": []}, lambda name: None)
    m = w["metrics"]
    metrics = world.metrics
    metrics.load({"start": m["start"], "actions_at_start": m["actions_at_start"],
                  "minted_at_start": m["minted_at_start"], "index": m["index"],
                  # A journal from before these counters: they count from the resume.
                  "base": m["base"] if "base" in m else metrics.counters(),
                  "windows": w.get("windows", []), "timer": False})
    if w["clock"]["paused"]:
        world.set_paused(True)
