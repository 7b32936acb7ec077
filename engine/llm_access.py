"""What an LLM brain may use beyond the plain observation: one narrow capability per agent.

A brain never holds the world. The agent's view hands an `LLMAccess` (the
`engine.ports.LLMBudget` brains name) to an LLM brain
(`view.llm`), and through it alone the brain spends the world's LLM budget, learns the
action vocabulary (costs and the genesis services' `describe()`), reads the few facts its
prompt needs, reports a failed turn as an event, and records each request and answer in
the world's journal.

The world's LLM settings that are not per brain (a recording to replay answers from) live
in `LLMSettings`, one per world, kept beside the world rather than in it.
"""

from __future__ import annotations

import math
import weakref
from typing import TYPE_CHECKING, Any

from .errors import Refusal
from .events import BrainFailed

if TYPE_CHECKING:
    from .llm_record import Recording
    from .world import World


class LLMSettings:
    """Per world: where answers come from when they are replayed (None: from the model)."""

    __slots__ = ("replay", "asked", "__weakref__")

    def __init__(self) -> None:
        self.replay: Recording | None = None
        self.asked: dict[str, int] = {}  # request digest -> times asked in this run


_SETTINGS: weakref.WeakKeyDictionary[Any, LLMSettings] = weakref.WeakKeyDictionary()


def llm_settings(world: World) -> LLMSettings:
    """The world's LLM settings (made on first use)."""
    settings = _SETTINGS.get(world)
    if settings is None:
        settings = _SETTINGS[world] = LLMSettings()
    return settings


class LLMAccess:
    """An agent's access to what LLM thinking needs, and nothing more."""

    __slots__ = ("_world", "agent_id")

    def __init__(self, world: World, agent_id: str) -> None:
        self._world = world
        self.agent_id = agent_id

    # -- the budget (dollars, shared by every LLM agent of the world) ------------------------
    @property
    def budget(self) -> float:
        return self._world.ledger.llm_budget

    @property
    def spent(self) -> float:
        return self._world.ledger.llm_spent

    @property
    def remaining(self) -> float:
        ledger = self._world.ledger
        return max(0.0, ledger.llm_budget - ledger.llm_spent)

    def exhausted(self) -> bool:
        ledger = self._world.ledger
        return ledger.llm_spent >= ledger.llm_budget - 1e-12

    def spend(self, dollars: float) -> float:
        """Pay `dollars` from the budget, or what is left of it when that is less.
        Returns what was paid; never raises for a spent budget."""
        if not (dollars >= 0 and math.isfinite(dollars)):
            raise ValueError(f"an LLM cost must be a finite number >= 0, got {dollars!r}")
        ledger = self._world.ledger
        try:
            ledger.spend_llm(dollars)
            return dollars
        except Refusal as r:
            if r.code != "budget":
                raise
        left = self.remaining
        if left > 0:
            ledger.spend_llm(left)
        return left

    # -- what the prompt needs ---------------------------------------------------------------
    def action_costs(self) -> dict[str, float]:
        return dict(self._world.waist.costs)

    def services(self) -> list[tuple[dict[str, Any], dict[str, frozenset[str] | None]]]:
        """Every genesis service's `describe()`, with the set of required parameters per
        method (None where unknown), in the waist's order."""
        out = []
        for service in self._world.waist.genesis.values():
            live = getattr(service, "methods", {})
            required = {name: getattr(m, "required", None) for name, m in live.items()}
            out.append((service.describe(), required))
        return out

    def oracle_terms(self) -> dict[str, Any]:
        cfg = self._world.config.oracle
        return {"min_bid": cfg.min_bid, "slots": cfg.slots, "resolution_interval_s": cfg.resolution_interval}

    def my_artifacts(self) -> list[tuple[str, str, int]]:
        """(id, kind, size) of every artifact the agent owns, oldest first."""
        return [(a.id, a.kind, a.size) for a in self._world.artifacts.owned_by(self.agent_id)]

    def my_bids(self) -> dict[str, int]:
        me = self.agent_id
        return {b.artifact_id: b.amount for (bidder, _), b in self._world.oracle.bids.items() if bidder == me}

    def peers(self) -> list[str]:
        """Other live agents, in creation order."""
        me = self.agent_id
        return [a for a in self._world.live_ids if a != me]

    # -- events, records, time ---------------------------------------------------------------
    def report_failure(self, error: str, consecutive: int) -> None:
        world = self._world
        world.bus.publish(BrainFailed(world.clock.now(), self.agent_id, error, consecutive))

    def record(self, row: tuple[Any, ...]) -> None:
        """Journal one request and its answer, a row of `llm_record.row_for` (nothing when
        the world is not recorded)."""
        journal = self._world.journal
        if journal is not None:
            journal.record_llm_call(row)

    def occurrence(self, digest: str) -> int:
        """How many times this same request was asked before in the world's run."""
        asked = llm_settings(self._world).asked
        n = asked.get(digest, 0)
        asked[digest] = n + 1
        return n

    @property
    def replay(self) -> Recording | None:
        return llm_settings(self._world).replay


__all__ = ["LLMAccess", "LLMSettings", "llm_settings"]
