"""The brain registry and the built-in scripted brains."""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap

import pytest

from ecotest import all_true, run_world
from engine.actions import NOOP, Invoke, Sleep
from engine.brains import BRAINS, brain_class, build_brain
from engine.config import load_scenario
from engine.errors import Refusal
from engine.world import World


class View:
    """A stand-in observation for unit-testing a brain's decision."""

    def __init__(self, scrip: int = 10, others=("b",), compute: float = 10.0, rate: float = 1.0, frozen=()):
        self.id = "a"
        self.scrip = scrip
        self.compute = compute
        self.rate = rate
        self.last_result = None
        self.wall_time = "2026-01-01T00:00:00+00:00"
        self._others = list(others)
        self._frozen = list(frozen)

    def random_other(self):
        return self._others[0] if self._others else None

    def scrip_of(self, who):
        return {"b": 1, "c": 0}.get(who, 0)

    def frozen_agents(self):
        return self._frozen


def brain(name: str, **params):
    return build_brain(name, params, random.Random(1))


def test_builtin_brains_are_registered():
    assert {"boltzmann", "philanthropist", "dreamer", "rescuer", "founder"} <= set(BRAINS)
    with pytest.raises(Refusal, match="unknown brain 'telepath'"):
        brain_class("telepath")
    with pytest.raises(Refusal):
        brain_class(None)


def test_registering_a_brain_first_keeps_the_builtins():
    """Found by this suite: registering a test brain before anything asked for a brain
    used to hide every built-in (the registry loaded them only while it was empty)."""
    code = textwrap.dedent(
        """
        from engine.brains import register, brain_class
        from engine.brains.base import Brain

        @register
        class Mine(Brain):
            name = "mine"

        assert brain_class("boltzmann").name == "boltzmann"
        assert brain_class("mine") is Mine
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_boltzmann_gives_one_scrip_or_waits_when_broke():
    b = brain("boltzmann")
    action = b.decide(View(scrip=3))
    assert isinstance(action, Invoke) and action.args == {"to": "b", "amount": 1}
    assert b.thought_cost == 0.5
    assert b.decide(View(scrip=0)) is NOOP
    sleeper = brain("boltzmann", when_broke="sleep")
    action = sleeper.decide(View(scrip=0))
    assert isinstance(action, Sleep) and action.until_event == ("scrip_transferred",)
    assert brain("boltzmann").decide(View(others=())) is NOOP


def test_philanthropist_gives_to_the_poorest_it_sees():
    b = brain("philanthropist", keep=5, gift=2)
    assert isinstance(b.decide(View(scrip=6)), Sleep)
    action = b.decide(View(scrip=7))
    assert action.args == {"to": "b", "amount": 2}


def test_rescuer_rescues_only_with_a_reserve():
    b = brain("rescuer", reserve=2.0, amount=3.0)
    action = b.decide(View(compute=5.0, frozen=["x"]))
    assert isinstance(action, Invoke) and action.method == "transfer_compute" and action.args["to"] == "x"
    assert isinstance(b.decide(View(compute=4.9, frozen=["x"])), Sleep)
    assert isinstance(b.decide(View(compute=50.0, frozen=[])), Sleep)


def test_founder_saves_then_spawns():
    b = brain("founder", threshold=40, endowment=10, rate_share=0.25, max_children=1)
    waiting = b.decide(View(scrip=39))
    assert isinstance(waiting, Sleep) and waiting.until is not None
    assert waiting.until(View(scrip=40)) and not waiting.until(View(scrip=39))
    action = b.decide(View(scrip=40, rate=2.0))
    assert action.method == "spawn" and action.args == {"brain": "boltzmann", "rate": 0.5, "scrip": 10}
    assert b.decide(View(scrip=40)).method == "transfer"  # done founding


def test_brain_params_are_validated():
    with pytest.raises(Exception, match="think_cost"):
        build_brain("dreamer", {"think_cost": -1}, random.Random(0))
    with pytest.raises(Exception, match="when_broke"):
        build_brain("boltzmann", {"when_broke": "cry"}, random.Random(0))


@pytest.mark.anyio
async def test_default_world_is_lively_and_sound():
    from engine.clock import VirtualClock

    world = World(load_scenario("default"), clock=VirtualClock())
    await run_world(world, 180.0)
    assert all_true(world.invariants())
    counts = world.bus.counts
    assert counts["scrip_transferred"] > 100
    assert counts["agent_spawned"] >= 1  # founders founded
    assert counts["compute_transferred"] >= 1  # rescuers rescued
    assert any(a.times_frozen for a in world.agents.values() if a.id.startswith("d"))  # dreamers froze
    assert counts["artifact_written"] > 0
    assert not any(a.crashed for a in world.agents.values())
