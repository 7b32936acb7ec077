"""Metrics windows: the only ticks left in a continuous world (SPEC §3).

A background loop closes a window every `interval` world seconds and records its
aggregates: actions and actions/s, scrip supply, held scrip, minted, total compute debt,
frozen agents, and the Gini coefficient of scrip across agents.
"""

from __future__ import annotations

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


class Metrics:
    def __init__(self, world: World, interval: float, keep: int) -> None:
        self.world = world
        self.interval = interval
        self.windows: deque[dict[str, Any]] = deque(maxlen=keep)
        self._start = world.clock.now()
        self._actions_at_start = 0
        self._minted_at_start = world.ledger.minted
        self.index = 0
        self._timer: Timer | None = None

    def start(self) -> None:
        """Close a window every `interval` (a timer of the scheduler, set once the world runs)."""
        if self._timer is None:
            self._timer = self.world.scheduler.call_at(self._start + self.interval, self._tick)

    def _tick(self, now: float) -> None:
        self.close_window(now)
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
        window = {
            "index": self.index,
            "start": round(self._start, 6),
            "end": round(now, 6),
            "actions": actions - self._actions_at_start,
            "actions_per_s": round((actions - self._actions_at_start) / length, 3) if length > 0 else 0.0,
            "scrip_supply": ledger.scrip_supply,
            "held": ledger.held_total,
            "minted": ledger.minted - self._minted_at_start,
            "minted_total": ledger.minted,
            "compute_debt": round(debt, 6),
            "frozen": len(world.frozen),
            "agents": len(world.live_ids),
            "gini": round(gini(ledger.scrip[a] for a in agents), 6),
            "invariants_ok": all(world.invariants().values()),
        }
        self.windows.append(window)
        self.index += 1
        self._start = now
        self._actions_at_start = actions
        self._minted_at_start = ledger.minted
        world.bus.publish(WindowClosed(now, window))
        return window
