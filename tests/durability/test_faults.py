"""Fault injection: the world keeps running, and every invariant holds at every metrics
window, through brains that raise 1% of the time, sandboxes killed under running code,
an event subscriber that never reads, and a journal that runs out of room."""

from __future__ import annotations

import os
import signal

import anyio
import pytest

from engine.brains import register
from engine.brains.scripted import Boltzmann
from engine.clock import VirtualClock
from engine.config import load_scenario, parse_world
from engine.world import World

pytestmark = pytest.mark.anyio


@register
class Flaky(Boltzmann):
    """A Boltzmann agent whose thinking fails 1% of the time (seeded, so reproducible)."""

    name = "test_flaky"

    def decide(self, view):
        if self.rng.random() < 0.01:
            raise RuntimeError("injected brain fault")
        return super().decide(view)


def faulty_world_config():
    base = load_scenario("default").model_dump()
    base["agents"].append({"brain": "test_flaky", "count": 30, "scrip": 5, "rate": 1.0, "prefix": "x"})
    base["compute"]["total_rate"] = None
    base["operator"]["rate"] = 10.0
    base["metrics"]["interval"] = 30.0
    return parse_world(base, source="faults")


async def open_subprocess_sandbox(world):
    from containers.subprocess_backend import SubprocessSandbox

    sandbox = SubprocessSandbox(world.report_sandbox)
    await sandbox.open()
    return sandbox, "subprocess sandbox (fault test)"


def runner_pids(sandbox) -> list[int]:
    """The runner processes of the agents' sandboxes (the subprocess backend's children)."""
    return [slot.handle.ident for slot in sandbox._slots.values() if slot.handle is not None]


async def test_world_runs_on_through_injected_faults(tmp_path):
    world = World(faulty_world_config(), clock=VirtualClock(), sandbox_factory=open_subprocess_sandbox)
    journal = world.attach_journal(tmp_path / "faults.db", commit_interval=0.05)
    deaf = world.bus.subscribe(maxlen=100)  # a subscriber that never reads
    windows = world.bus.subscribe(["window_closed"], maxlen=100_000)
    incidents = world.bus.subscribe(["sandbox_incident", "brain_failed"], maxlen=100_000)
    killed = 0
    async with anyio.create_task_group() as tg:
        tg.start_soon(world.run, 1800.0)
        # Phase 1: run until the coders have sandboxes, then kill their runners under them.
        while world.clock.now() < 600.0:
            await anyio.lowlevel.checkpoint()
            if world.clock.now() > 300.0 and not killed and world.sandbox is not None:
                for pid in runner_pids(world.sandbox):
                    os.kill(pid, signal.SIGKILL)
                    killed += 1
        # Phase 2: the journal's disk fills up; the world pauses; room comes back; resume.
        pages = journal.db.execute("PRAGMA page_count").fetchone()[0]
        journal.db.execute(f"PRAGMA max_page_count = {pages}")
        while journal.failed is None:
            await journal.flush()
        assert world.paused
        journal.db.execute("PRAGMA max_page_count = 1073741823")
        assert await journal.flush()
        assert world.invoke("world", "resume").ok
    # The world ran its full course.
    assert world.clock.now() == pytest.approx(1800.0)
    closed = [e.window for e in windows.drain()]
    assert len(closed) >= 50
    assert all(w["invariants_ok"] for w in closed), [w["index"] for w in closed if not w["invariants_ok"]]
    assert all(w["actions"] > 0 for w in closed[-10:])  # still acting at the end
    assert all(world.invariants().values()), world.invariants()
    kinds = [e.kind for e in incidents.drain()]
    assert kinds.count("brain_failed") >= 20  # 1% of thousands of thoughts failed...
    flaky = [a for a in world.agents.values() if a.id.startswith("x")]
    assert sum(a.actions for a in flaky) > 1000 and not any(a.crashed for a in flaky)  # ...and they went on
    assert killed >= 1 and world.mechanisms["code_run"] > killed  # code ran again after the kills
    # The deaf reader lost events (the world did not): at most its 100 queued plus one
    # coalesced stats reading per agent wait for it.
    assert deaf.dropped > 0 and deaf.pending() <= 100 + len(world.agents)
    journal.close()
