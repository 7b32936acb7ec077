"""Helpers for the engine tests: a scriptable test brain, world builders, a timed operator.

The `test_script` brain records every turn an agent takes (world time, wall time, the
observation it got) in `TURNS[agent_id]` and asks `SCRIPTS[agent_id]` what to do; with no
script it parks (sleeps for a very long time). Scripts are plain functions of
`(view, brain) -> Action`; `steps(...)` builds one from a list of actions.

`run_world(world, duration, schedule)` runs a world on its clock with operator actions
fired at exact world times. The scheduled tasks count as engine tasks, so a virtual clock
never jumps past one of them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import anyio
from pydantic import Field

from engine.actions import Action, Sleep
from engine.brains import brain_class, register
from engine.brains.base import Brain, BrainParams
from engine.clock import Clock, VirtualClock
from engine.config import parse_world
from engine.world import World

PARK = 1e6  # seconds: "sleep for the rest of the test"

# Load the built-in brains before registering ours: registering first would hide them
# (see test_brains.py::test_registering_a_brain_first_keeps_the_builtins).
brain_class("boltzmann")

Script = Callable[[Any, Brain], Action]


@dataclass
class Turn:
    t: float
    tag: str
    brain: str
    wall_time: str
    next_resolution_in: float | None
    scrip: int
    compute: float
    last: Any  # the previous turn's Result (a sleep's says why it woke)


SCRIPTS: dict[str, Script] = {}
TURNS: dict[str, list[Turn]] = {}


def reset() -> None:
    SCRIPTS.clear()
    TURNS.clear()


def times(agent_id: str) -> list[float]:
    """World times at which an agent decided (started a turn)."""
    return [turn.t for turn in TURNS.get(agent_id, [])]


class _Recording(Brain):
    """Base of the test brains: record the turn, then follow the agent's script."""

    class Params(BrainParams):
        think_cost: float = Field(0.0, ge=0, allow_inf_nan=False)
        tag: str = ""

    def decide(self, view) -> Action:
        self.thought_cost = self.params.think_cost  # a script may raise it for one turn
        TURNS.setdefault(view.id, []).append(
            Turn(
                t=view.now,
                tag=self.params.tag,
                brain=self.name,
                wall_time=view.wall_time,
                next_resolution_in=view.next_resolution_in,
                scrip=view.scrip,
                compute=view.compute,
                last=view.last_result,
            )
        )
        script = SCRIPTS.get(view.id)
        if script is None:
            return Sleep(seconds=PARK)
        return script(view, self)


@register
class ScriptBrain(_Recording):
    name = "test_script"
    summary = "test brain: follows SCRIPTS[agent_id]"


@register
class OtherScriptBrain(_Recording):
    """A second brain class, to see a config change of brain take effect."""

    name = "test_other"
    summary = "test brain (a second class)"


def steps(*items: Action | tuple[Action, float] | Script, then: Script | None = None) -> Script:
    """A script that plays `items` in order, one per turn, then `then` (default: park).

    An item is an action, an `(action, think_cost)` pair, or a script function."""
    queue = list(items)

    def script(view, brain: Brain) -> Action:
        if not queue:
            return then(view, brain) if then is not None else Sleep(seconds=PARK)
        item = queue.pop(0)
        if isinstance(item, tuple):
            action, cost = item
            brain.thought_cost = cost
            return action
        if isinstance(item, Action):
            return item
        return item(view, brain)

    return script


ZERO_COSTS = {"noop": 0.0, "read": 0.0, "write": 0.0, "delete": 0.0, "sleep": 0.0, "invoke": 0.0}


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def world_data(agents: Iterable[dict[str, Any]] = (), **overrides: Any) -> dict[str, Any]:
    """World-file data: free actions, a long metrics interval, the given agent groups."""
    data: dict[str, Any] = {
        "name": "test",
        "seed": 3,
        "costs": dict(ZERO_COSTS),
        "operator": {"scrip": 100, "capacity": 100.0, "rate": 0.0},
        "metrics": {"interval": 1e5},
        "oracle": {"resolution_interval": 60.0},
        "agents": [
            {"brain": "test_script", "count": 1, "scrip": 10, "rate": 1.0, "capacity": 10.0, **g}
            for g in agents
        ],
    }
    return _merge(data, overrides)


def make_world(agents: Iterable[dict[str, Any]] = ({},), clock: Clock | None = None, **overrides: Any) -> World:
    """A world of test-script agents (ids a001, a002, ... unless a group sets a prefix)."""
    config = parse_world(world_data(agents, **overrides), source="test")
    return World(config, clock=clock if clock is not None else VirtualClock())


async def run_world(
    world: World, duration: float, schedule: Iterable[tuple[float, Callable[[], Any]]] = ()
) -> None:
    """Run `world` until `duration`, calling each `fn` of `schedule` at world time `t`."""
    scheduler = world.scheduler

    async def at(t: float, fn: Callable[[], Any]) -> None:
        try:
            await scheduler.sleep_until(t)
            fn()
        finally:
            scheduler.task_finished()

    async with anyio.create_task_group() as tg:
        for t, fn in schedule:
            scheduler.task_started()  # counted before it first runs, like the world's own tasks
            tg.start_soon(at, t, fn)
        await world.run(duration)
        tg.cancel_scope.cancel()


def state(world: World, compute: bool = True) -> dict[str, Any]:
    """Everything a refused operation must leave alone."""
    ledger = world.ledger
    now = world.clock.now()
    snap: dict[str, Any] = {
        "scrip": dict(ledger.scrip),
        "held": dict(ledger.held),
        "rate_micro": dict(ledger.rate_micro),
        "rates": {p: b.rate for p, b in ledger.buckets.items()},
        "capacity": {p: b.capacity for p, b in ledger.buckets.items()},
        "minted": ledger.minted,
        "initial": ledger.initial_scrip,
        "disk_used": dict(ledger.disk_used),
        "agents": sorted(world.agents),
        "live": list(world.live_ids),
        "artifacts": {
            a.id: (a.kind, a.owner, a.version, a.size, repr(a.content)) for a in world.artifacts.by_id.values()
        },
        "config": {a.id: (a.config_artifact.version, repr(a.config)) for a in world.agents.values()},
        "status": {a.id: (a.crashed, a.paused, a.stopped) for a in world.agents.values()},
        "paused": world.paused,
    }
    if compute:
        snap["compute"] = {p: b.peek(now) for p, b in ledger.buckets.items()}
    return snap


def all_true(invariants: dict[str, bool]) -> bool:
    return bool(invariants) and all(invariants.values())
