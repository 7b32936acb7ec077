"""Metrics windows: the only ticks left in a continuous world (SPEC §3).

A background loop closes a window every `interval` world seconds and records its
aggregates: actions and actions/s, scrip supply, held scrip, minted (and per hour), total
compute debt, frozen agents, the Gini coefficient of scrip across agents and the share the
richest tenth hold, scrip moved and its velocity (moved over supply), loans defaulted and
repaid, and LLM dollars spent.
"""

from __future__ import annotations

import math
from collections import deque
from typing import TYPE_CHECKING, Any, Iterable

from .events import WindowClosed

if TYPE_CHECKING:
    from .scheduler import Timer
    from .world import World


def gini(values: Iterable[int | float]) -> float:
    """Gini coefficient (0 = equal, -> 1 = one holds everything); 0 for no wealth."""
    xs = sorted(values)
    n = len(xs)
    total = sum(xs)
    if n == 0 or total <= 0:
        return 0.0
    weighted = sum((2 * i - n + 1) * x for i, x in enumerate(xs))
    return weighted / (n * total)


def top_share(values: Iterable[int], fraction: float = 0.1) -> float:
    """The share of all wealth held by the richest `fraction` of holders (at least one);
    0 for no wealth. 0.1 of ten equal holders is 0.1; one holder of everything is 1."""
    xs = sorted(values)
    total = sum(xs)
    if not xs or total <= 0:
        return 0.0
    k = max(1, math.ceil(len(xs) * fraction))
    return sum(xs[-k:]) / total




class Metrics:
    def __init__(self, world: World, interval: float, keep: int) -> None:
        self.world = world
        self.interval = interval
        self.windows: deque[dict[str, Any]] = deque(maxlen=keep)
        self._start = world.clock.now()
        self._actions_at_start = 0
        self._minted_at_start = world.ledger.minted
        # The other counters at the window's start (persisted with the journal's state).
        self.base = self.counters()
        self.index = 0
        self._timer: Timer | None = None

    # -- a checkpoint's view of the metrics -----------------------------------------------------
    @property
    def timer(self) -> Timer | None:
        return self._timer

    def dump(self) -> dict[str, Any]:
        """The open window's start and counters, and the closed windows kept."""
        return {"start": self._start, "actions_at_start": self._actions_at_start,
                "minted_at_start": self._minted_at_start, "base": self.base, "index": self.index,
                "windows": list(self.windows), "timer": self._timer is not None}

    def load(self, state: dict[str, Any]) -> None:
        if not (type(state["start"]) in (float, int) and type(state["actions_at_start"]) is int
                and type(state["minted_at_start"]) is int and type(state["index"]) is int
                and isinstance(state["base"], dict) and isinstance(state["windows"], list)):
            raise ValueError("the metrics' open window is not a window")
        self._start, self._actions_at_start = float(state["start"]), state["actions_at_start"]
        self._minted_at_start, self.index, self.base = state["minted_at_start"], state["index"], dict(state["base"])
        self.windows.clear()
        self.windows.extend(state["windows"])
        if state.get("timer"):
            self._timer = self.world.scheduler.timer(self._tick)

    def counters(self) -> dict[str, float]:
        """The cumulative counters whose change a window reports."""
        world = self.world
        mechanisms = world.mechanisms
        return {
            "moved": world.ledger.moved,
            "defaults": mechanisms.get("loan_defaulted", 0),
            "repayments": mechanisms.get("loan_repaid", 0),
            "llm_spent": world.ledger.llm_spent,
        }

    def start(self) -> None:
        """Close a window every `interval` (a timer of the scheduler, set once the world runs)."""
        if self._timer is None:
            self._timer = self.world.scheduler.call_at(self._start + self.interval, self._tick)

    def _tick(self, now: float) -> None:
        self.close_window(now)
        if self._timer is not None:  # (set by start, which set this tick)
            self._timer.reschedule(self._start + self.interval)

    def close_window(self, now: float, final: bool = False) -> dict[str, Any] | None:
        world = self.world
        length = now - self._start
        if length <= 0:  # the run ended exactly on a window edge: nothing to record
            return None
        ledger = world.ledger
        agents = world.agents
        actions = world.total_actions
        debt = 0.0
        for agent_id in agents:
            balance = ledger.buckets[agent_id].peek(now)
            if balance < 0:
                debt -= balance
        counters = self.counters()
        base = self.base
        supply = ledger.scrip_supply
        minted = ledger.minted - self._minted_at_start
        moved = counters["moved"] - base.get("moved", 0)
        wealth = [ledger.scrip[a] for a in agents]
        window = {
            "index": self.index,
            "start": round(self._start, 6),
            "end": round(now, 6),
            "actions": actions - self._actions_at_start,
            "actions_per_s": round((actions - self._actions_at_start) / length, 3) if length > 0 else 0.0,
            "scrip_supply": supply,
            "held": ledger.held_total,
            "minted": minted,
            "minted_total": ledger.minted,
            "minted_per_hour": round(minted * 3600 / length, 3),
            "moved": moved,  # scrip paid from one principal to another (transfers, sales, repayments)
            "velocity": round(moved / supply, 6) if supply > 0 else 0.0,
            "compute_debt": round(debt, 6),
            "frozen": len(world.frozen),
            "agents": len(world.live_ids),
            "gini": round(gini(wealth), 6),
            "top10_share": round(top_share(wealth), 6),
            "defaults": counters["defaults"] - base.get("defaults", 0),
            "repayments": counters["repayments"] - base.get("repayments", 0),
            "llm_dollars": round(counters["llm_spent"] - base.get("llm_spent", 0.0), 6),
            "llm_spent": round(counters["llm_spent"], 6),
            "invariants_ok": all(world.invariants().values()),
        }
        self.windows.append(window)
        self.index += 1
        self._start = now
        self._actions_at_start = actions
        self._minted_at_start = ledger.minted
        self.base = counters
        world.bus.publish(WindowClosed(now, window))
        return window
