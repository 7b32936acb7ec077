"""A seeded demo world for screenshots and snapshot tests: the default world run on a
virtual clock to a fixed instant, plus a few operator moves so every panel has something
to show, and recorded sandbox readings (an OOM kill among them) so the Containers panel
can be shown without Docker. Same seed, same world, byte for byte. A fixture: the app
itself never builds it (tests/tui/screenshots.py, the snapshot tests, benchmarks)."""

from __future__ import annotations

from dataclasses import dataclass

import anyio

from engine.actions import Write
from engine.agent import remember_history
from engine.clock import VirtualClock
from engine.config import WorldConfig, load_scenario
from engine.events import SandboxIncidentEvent, SandboxStatsEvent
from engine.sandbox import SandboxStats
from engine.waist import OPERATOR
from engine.world import World

DEMO_SEED = 7
DEMO_UNTIL = 285.0  # 15 s before the fifth resolution: bids are open, loans have defaulted
MiB = 2**20


@dataclass
class RecordedSandbox:
    """Stands in for a sandbox in screenshots: a name is all the UI asks of one."""

    name: str = "subprocess"


def demo_config(seed: int = DEMO_SEED) -> WorldConfig:
    return load_scenario("default").model_copy(update={"seed": seed})


def demo_world(until: float = DEMO_UNTIL, seed: int = DEMO_SEED, operator_moves: bool = True,
               sandbox: bool = True) -> World:
    world = World(demo_config(seed), clock=VirtualClock())
    remember_history(world)  # as the app does, from the start: the history has its past
    anyio.run(world.run, until)
    if operator_moves:
        stage_operator(world)
    if sandbox:
        stage_sandbox(world)
    return world


def stage_operator(world: World) -> None:
    """What a person might have done by now: an artifact with a bid on it, a loan offer,
    a slice of rate for sale."""
    now = world.clock.now()
    result = world.waist.perform(OPERATOR, Write("A field guide to the ecology: who lends, who builds, who "
                                                   "rescues, and why the frozen thaw.", "field-guide"), now)
    assert result.ok, result
    for target, method, args in (
        ("oracle", "bid", {"artifact": "field-guide", "amount": 12}),
        ("contracts", "offer", {"debtor": "b002", "principal": 20, "rate_per_day": 24.0, "due_in": 300.0}),
        ("rights", "slice_rate", {"amount": 2.0}),
    ):
        result = world.invoke(target, method, args)
        assert result.ok, (method, result)
    slice_id = result.value["artifact"]
    result = world.invoke("market", "list", artifact=slice_id, price=15)
    assert result.ok, result


def stage_sandbox(world: World) -> None:
    """Readings of three sandboxes, one of which was just OOM-killed and replaced."""
    now = world.clock.now()
    world.sandbox = RecordedSandbox()
    world.sandbox_reason = (
        "subprocess sandbox: recorded readings for the demo; with Docker each agent gets a container"
    )
    readings = [
        SandboxStats("c001", "subprocess", "running", cpu_percent=38.0, memory_bytes=41 * MiB,
                     memory_limit_bytes=128 * MiB, pids=3, restarts=0, oom_kills=0, cpus=0.2),
        SandboxStats("c002", "subprocess", "running", cpu_percent=4.0, memory_bytes=12 * MiB,
                     memory_limit_bytes=128 * MiB, pids=1, restarts=1, oom_kills=1, cpus=0.2),
        SandboxStats("w001", "subprocess", "running", cpu_percent=91.0, memory_bytes=118 * MiB,
                     memory_limit_bytes=128 * MiB, pids=9, restarts=0, oom_kills=0, cpus=0.15),
    ]
    stats = getattr(world, "sandbox_stats", None)
    if stats is None:  # an engine without the stats table: the events alone fill the panel
        stats = world.sandbox_stats = {}
    for s in readings:
        stats[s.agent_id] = s
        world.bus.publish(SandboxStatsEvent(now, s.agent_id, s))
    world.bus.publish(SandboxIncidentEvent(now, "c002", "oom",
                                           "memory limit 128 MiB reached; killed and replaced"))
