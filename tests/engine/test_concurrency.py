"""Hundreds of agents racing to give away everything they have, and more (issue 2, item 3).

Each greedy agent looks at its balance, yields to the scheduler (so others act between its
look and its move), then tries to transfer that balance, sometimes plus extra, to a shared
sink or to a random other agent. Nothing may overdraw: invariants hold, no balance is ever
negative, the supply is conserved, and every refusal is counted and explained.
"""

from __future__ import annotations

import anyio
import pytest
from pydantic import Field

from ecotest import all_true, make_world, run_world
from engine.actions import Invoke
from engine.brains import register
from engine.brains.base import Brain, BrainParams
from engine.events import ScripTransferred

N = 300


@register
class Greedy(Brain):
    name = "test_greedy"
    is_async = True

    class Params(BrainParams):
        think_cost: float = Field(1.0, ge=0)
        sink: str = "sink001"

    async def decide(self, view):
        seen = view.scrip
        await anyio.lowlevel.checkpoint()  # the race: others move money in between
        rnd = self.rng.random()
        to = self.params.sink if rnd < 0.02 else view.random_other()
        extra = (0, 0, 1, 7)[int(self.rng.random() * 4)]
        return Invoke("ledger", "transfer", {"to": to, "amount": max(1, seen + extra)})


@pytest.mark.anyio
async def test_hundreds_of_racing_agents_never_overdraw():
    world = make_world(
        [
            {"brain": "test_greedy", "count": N - 1, "scrip": 5, "rate": 1.0, "capacity": 3.0},
            {"prefix": "sink", "scrip": 0},
        ],
        operator={"scrip": 0},
    )
    ledger = world.ledger
    initial = dict(ledger.scrip)
    sent: dict[str, int] = {p: 0 for p in initial}
    received: dict[str, int] = {p: 0 for p in initial}
    lowest = [0]

    def audit(ev) -> None:
        if type(ev) is ScripTransferred:
            sent[ev.frm] += ev.amount
            received[ev.to] += ev.amount
            lowest[0] = min(lowest[0], ledger.scrip[ev.frm])

    world.bus.add_hook(audit)
    await run_world(world, 20.0)

    assert len(world.agents) == N
    assert all_true(world.invariants())
    assert lowest[0] >= 0 and min(ledger.scrip.values()) >= 0
    assert ledger.scrip_supply == ledger.initial_scrip == 5 * (N - 1)
    # Every balance is explained by the transfers that happened, one by one.
    for p in initial:
        assert ledger.scrip[p] == initial[p] + received[p] - sent[p], p
    transfers = world.bus.counts["scrip_transferred"]
    refusals = world.waist.refusals
    actions = sum(a.actions for a in world.agents.values() if a.id != "sink001")
    assert transfers > 1000 and refusals > 1000  # lots of both: a real race (~1.5k and ~5k)
    assert refusals == sum(a.refused for a in world.agents.values())
    assert refusals == world.bus.counts["action_refused"]
    assert transfers + refusals == actions
    assert received["sink001"] > 0
    # Greedy agents that tried to give more than they had were told why.
    reasons = [e.reason for e in world.bus.recent if e.kind == "action_refused"]
    assert reasons and all("insufficient scrip" in r for r in reasons)
    assert all(a.status != "crashed" and a.total_failures == 0 for a in world.agents.values())
