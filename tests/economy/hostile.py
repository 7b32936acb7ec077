"""A world with something to act on for every genesis method, each method's natural caller
and good arguments, and the hostile numbers thrown at them (issue 12).

The world runs on a real clock whose machine time the test holds still (so `set_speed`
has a real clock to change, as the operator's has, and nothing moves between calls).
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any

from econ import call, ok
from ecotest import all_true, world_data

from engine.clock import RealClock
from engine.config import parse_world
from engine.world import World


class Machine:
    """The machine's monotonic clock, moved only by the test."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


SLICE = "<slice>"  # replaced by a001's rate slice id

# (target, method) -> (natural caller, good arguments). Every genesis method is here (a
# test checks the table against the services' declarations).
NATURAL: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {
    ("ledger", "balance"): ("a001", {"of": "a002"}),
    ("ledger", "transfer"): ("a001", {"to": "a002", "amount": 5}),
    ("ledger", "transfer_compute"): ("a001", {"to": "a002", "amount": 1.5}),
    ("ledger", "transfer_rate"): ("a001", {"to": "a002", "amount": 0.1}),
    ("ledger", "transfer_artifact"): ("a001", {"artifact": "doc-2", "to": "a002"}),
    ("ledger", "spawn"): ("a001", {"brain": "test_script", "rate": 0.1, "scrip": 1, "capacity": 5.0,
                                   "params": {}, "agent_id": "kid"}),
    ("ledger", "set_rate"): ("operator", {"agent": "a001", "rate": 1.5}),
    ("ledger", "set_capacity"): ("operator", {"agent": "a001", "capacity": 30.0}),
    ("rights", "configure"): ("a001", {"agent": "a001", "brain": "test_script", "params": {}, "think_delay": 0.5}),
    ("rights", "owner"): ("a001", {"agent": "a002"}),
    ("rights", "slice_rate"): ("a001", {"amount": 0.1}),
    ("rights", "split"): ("a001", {"artifact": SLICE, "amount": 0.05}),
    ("rights", "dissolve"): ("a001", {"artifact": SLICE}),
    ("rights", "set_price"): ("a001", {"artifact": "code-1", "price": 3}),
    ("rights", "rights"): ("a001", {}),
    ("world", "pause"): ("operator", {}),
    ("world", "resume"): ("operator", {}),  # refused here: the world is not paused
    ("world", "set_speed"): ("operator", {"speed": 2.0}),
    ("world", "stop_agent"): ("operator", {"agent": "a002"}),
    ("world", "restart_agent"): ("operator", {"agent": "a003"}),
    ("world", "pause_agent"): ("operator", {"agent": "a002"}),
    ("world", "resume_agent"): ("operator", {"agent": "a004"}),
    ("oracle", "bid"): ("a001", {"artifact": "doc-1", "amount": 7}),
    ("oracle", "cancel"): ("a001", {"artifact": "doc-1"}),
    ("oracle", "open_bids"): ("a001", {}),
    ("oracle", "last_resolution"): ("a001", {}),
    ("oracle", "resolve_now"): ("operator", {}),
    ("market", "list"): ("a001", {"artifact": "doc-2", "price": 4, "buyer": "a002"}),
    ("market", "buy"): ("a002", {"listing": "listing-1"}),
    ("market", "cancel"): ("a001", {"listing": "listing-1"}),
    ("market", "listings"): ("a002", {"kind": "data"}),
    ("contracts", "offer"): ("a001", {"debtor": "a002", "principal": 10, "rate_per_day": 0.1, "due_in": 3600.0}),
    ("contracts", "accept"): ("a002", {"contract": "loan-1"}),
    ("contracts", "decline"): ("a002", {"contract": "loan-1"}),
    ("contracts", "cancel"): ("a001", {"contract": "loan-1"}),
    ("contracts", "repay"): ("a002", {"contract": "loan-2", "amount": 3}),
    ("contracts", "owed"): ("a001", {"contract": "loan-2"}),
    ("contracts", "credit"): ("a001", {"principal": "a002"}),
    ("contracts", "mine"): ("a001", {}),
}
REFUSED_WHEN_NATURAL = {("world", "resume")}


def stranger(target: str, method: str, natural: str) -> str:
    """Someone with no business calling: an agent for the operator's levers, another agent
    (a003, crashed, owning little) for an agent's."""
    return "a002" if natural == "operator" else ("a003" if natural != "a003" else "a001")


EXTREMES: list[Any] = [
    0, 1, -1, 2**53 - 1, 2**53, 2**53 + 1, -(2**53) - 1, 10**18, 10**400, -(10**400), 1e308, -1e308,
    math.inf, -math.inf, math.nan, -0.0, 5e-324, 0.1, True, False, "1", "1e308", None, [], [1], {}, {"a": 1},
]


def hostile_world() -> World:
    """a001 (1000 scrip, rate 1) owns doc-1 (bid on, 5), doc-2, doc-3 (listed as listing-1
    for 10), code-1 and a rate slice of 0.2; a002 (1000) owes a001 on loan-2 (active) and
    has loan-1 offered to it; a003 is crashed, a004 paused. The operator has 10,000 scrip
    and 5 units/s of rate in reserve."""
    data = world_data(
        [{"count": 4, "scrip": 1000, "rate": 1.0, "capacity": 50.0}],
        operator={"scrip": 10_000, "capacity": 100.0, "rate": 5.0},
        oracle={"min_bid": 2, "resolution_interval": 1e7},
        agents_policy={"disk_quota": 100_000},
    )
    machine = Machine()
    clock = RealClock(1.0, datetime(2026, 1, 1, tzinfo=timezone.utc), monotonic=machine)
    world = World(parse_world(data, source="hostile"), clock=clock)
    world.machine = machine
    for doc in ("doc-1", "doc-2", "doc-3"):
        world.artifacts.create("a001", "data", f"{doc}: some words of a001", 0.0, doc)
    world.artifacts.create("a001", "code", "def run():\n    return 1\n", 0.0, "code-1")
    ok(call(world, "a001", "oracle", "bid", {"artifact": "doc-1", "amount": 5}))
    assert ok(call(world, "a001", "market", "list", {"artifact": "doc-3", "price": 10}))["listing"] == "listing-1"
    world.slice = ok(call(world, "a001", "rights", "slice_rate", {"amount": 0.2}))["artifact"]
    for principal in (20, 10):
        ok(call(world, "a001", "contracts", "offer",
                {"debtor": "a002", "principal": principal, "rate_per_day": 0.1, "due_in": 86_400.0}))
    ok(call(world, "a002", "contracts", "accept", {"contract": "loan-2"}))
    world.agents["a003"].crashed = True
    world.agents["a003"].refresh_held()
    ok(world.invoke("world", "pause_agent", agent="a004"))
    machine.t += 60.0  # a minute on: interest has accrued on loan-2
    assert all_true(world.invariants())
    return world


def args_for(world: World, args: dict[str, Any]) -> dict[str, Any]:
    return {k: world.slice if v == SLICE else v for k, v in args.items()}
