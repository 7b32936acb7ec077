"""The JSON report of a run: seed, duration, every agent, totals, invariants, windows.

Same seed, same config and virtual time give the same report, byte for byte. A run that
ended before its duration (interrupted, or its journal failed) says so in `cut_short`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .ids import OPERATOR
from .metrics import gini

if TYPE_CHECKING:
    from .world import World


def build_report(world: World, duration: float | None = None, cut_short: str | None = None) -> dict[str, Any]:
    now = world.clock.now()
    ledger = world.ledger
    agents = [a.snapshot(now) for a in world.agents.values()]
    for a in agents:
        a["compute_balance"] = round(a["compute_balance"], 6)
    llm = llm_usage(world, agents)
    return {
        "world": world.config.name,
        "seed": world.seed,
        "clock": world.clock.kind,
        "duration_s": round(now if duration is None else duration, 6),
        "cut_short": cut_short,  # why the run ended early, or null when it ran its course
        "agents": agents,
        "totals": {
            "agents": len(world.agents),
            "live_agents": len(world.live_ids),
            "actions": world.total_actions,
            "refusals": world.waist.refusals,
            "scrip_supply": ledger.scrip_supply,
            "held": ledger.held_total,
            "initial_scrip": ledger.initial_scrip,
            "minted": ledger.minted,
            "operator_scrip": ledger.scrip[OPERATOR],
            "scrip_gini": round(gini(ledger.scrip[a] for a in world.agents), 6),
            "total_rate": ledger.total_rate_micro / 1_000_000,
            "frozen": len(world.frozen),
            "artifacts": len(world.artifacts),
            "events": dict(sorted(world.bus.counts.items())),
        },
        **({"llm": llm} if llm is not None else {}),
        "sandbox": world.sandbox_reason,
        "mechanisms": dict(world.mechanisms),
        "oracle": {
            "resolutions": world.oracle.resolved,
            "minted": world.oracle.minted_total,
            "open_bids": len(world.oracle.bids),
            "recent": list(world.oracle.resolutions)[-5:],
        },
        "market": {
            "open_listings": len(world.market.open),
            "sold": world.market.sold,
        },
        "contracts": {
            "by_status": _count_by(c.content["status"] for c in world.contracts.contracts.values()),
            "defaults": sum(r.get("defaulted", 0) for r in world.contracts.credit.values()),
            "retired": world.contracts.retired,
        },
        "rights": {
            "config_owned_by_others": {
                a.id: a.config_artifact.owner for a in world.agents.values() if a.config_artifact.owner != a.id
            },
            "rate_slices": sorted(
                ({"artifact": a.id, "owner": a.owner, "rate": a.content["rate"]}
                 for a in world.artifacts.by_id.values() if a.kind == "rate"),
                key=lambda x: x["artifact"],
            ),
        },
        "invariants": world.invariants(),
        "windows": list(world.metrics.windows),
    }


LLM_SUMS = ("turns", "answers", "valid_answers", "failed_turns", "replay_missing",
            "prompt_tokens", "cached_prompt_tokens", "completion_tokens")


def llm_usage(world: World, agents: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Tokens and dollars of LLM thinking: each LLM agent's (added to its entry in
    `agents` as "llm") and the world's in all, against its budget. None without LLM agents."""
    total: dict[str, Any] = dict.fromkeys(LLM_SUMS, 0)
    dollars = 0.0
    found = False
    for entry in agents:
        usage = getattr(world.agents[entry["id"]].brain, "usage", None)
        if usage is None:
            continue
        found = True
        u = usage()
        entry["llm"] = u
        for k in LLM_SUMS:
            total[k] += u[k]
        dollars += u["dollars"]
    if not found:
        return None
    n = max(1, total["answers"])
    total["dollars"] = round(dollars, 9)
    total["budget"] = world.ledger.llm_budget
    total["budget_spent"] = round(world.ledger.llm_spent, 9)
    total["per_answer"] = {
        "prompt_tokens": round(total["prompt_tokens"] / n, 1),
        "new_prompt_tokens": round((total["prompt_tokens"] - total["cached_prompt_tokens"]) / n, 1),
        "completion_tokens": round(total["completion_tokens"] / n, 1),
    }
    return total


def _count_by(values) -> dict[str, int]:
    counts: dict[str, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return dict(sorted(counts.items()))


def write_report(report: dict[str, Any], path: str | Path) -> None:
    Path(path).write_text(json.dumps(report, indent=2, sort_keys=False) + "\n", encoding="utf-8")
