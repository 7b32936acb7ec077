"""What an agent remembers of itself for the app (issue 19): its last actions with their
time, result and thought cost, and its last freezes with the action that caused each, how
long it lasted and how it ended. Both rings are bounded, and kept only when asked for."""

from __future__ import annotations

import pytest

from ecotest import SCRIPTS, make_world, run_world, steps
from engine.actions import Invoke, Noop, Sleep, Write
from engine.agent import RECENT_ACTIONS, RECENT_FREEZES, remember_history


def remembering(*args, **kw):
    world = make_world(*args, **kw)
    remember_history(world)
    return world


@pytest.mark.anyio
async def test_a_freeze_names_its_cause_and_how_long_it_lasted():
    # A write costing 13 from a full bucket of 10 at 0.5/s: debt 3, frozen exactly 6 s.
    world = remembering([{"rate": 0.5, "capacity": 10.0}], costs={"write": 13.0})
    SCRIPTS["a001"] = steps(Write("hello", "note"), Noop())
    await run_world(world, 20.0)
    agent = world.agents["a001"]
    [freeze] = agent.freezes
    assert freeze.t == 0.0
    assert freeze.debt == pytest.approx(3.0) and freeze.rate == 0.5
    assert freeze.cause.describe() == "write note"
    assert freeze.length == pytest.approx(6.0, abs=1e-9)
    assert freeze.ended == "paid off"
    t, action, result, think = agent.recent_actions[0]
    assert (t, action.describe(), result.ok, think) == (0.0, "write note", True, 0.0)
    assert [a.describe() for _, a, _, _ in agent.recent_actions] == ["write note", "noop", "sleep 1e+06s"]


@pytest.mark.anyio
async def test_a_rescued_freeze_ends_early_and_says_so():
    world = remembering([{"rate": 1.0, "capacity": 10.0}])
    SCRIPTS["a001"] = steps((Noop(), 20.0), Noop())  # debt 10: would thaw at t=10
    await run_world(world, 30.0, [(3.0, lambda: world.invoke("ledger", "transfer_compute", to="a001", amount=7.0))])
    [freeze] = world.agents["a001"].freezes
    assert freeze.cause.describe() == "noop"
    assert freeze.length == pytest.approx(3.0, abs=1e-9)
    assert freeze.ended == "paid off" and freeze.debt / freeze.rate == pytest.approx(10.0)  # sooner than its debt alone
    # The thought that caused it is remembered with its cost.
    assert world.agents["a001"].recent_actions[0][3] == 20.0


@pytest.mark.anyio
async def test_a_freeze_in_progress_has_no_length_yet():
    world = remembering([{"rate": 1.0, "capacity": 10.0}])
    SCRIPTS["a001"] = steps((Noop(), 20.0), Noop())
    await run_world(world, 4.0)
    [freeze] = world.agents["a001"].freezes
    assert freeze.length is None and freeze.ended == ""


@pytest.mark.anyio
async def test_refusals_are_remembered_and_the_rings_are_bounded():
    world = remembering([{"rate": 100.0, "capacity": 100.0}], costs={"noop": 30.0})
    bad = Invoke("ledger", "transfer", {"to": "nobody", "amount": 1})
    # Alternate a refused transfer and a noop that costs 30 from a bucket of 100 at
    # 100/s: every few turns the agent freezes for a fraction of a second.
    SCRIPTS["a001"] = steps(*[bad, Noop()] * 80, then=lambda view, brain: Sleep(seconds=1e6))
    await run_world(world, 60.0)
    agent = world.agents["a001"]
    assert len(agent.recent_actions) == RECENT_ACTIONS
    assert len(agent.freezes) == RECENT_FREEZES < agent.times_frozen
    refused = [r for _, a, r, _ in agent.recent_actions if a is bad]
    assert refused and all(not r.ok and "nobody" in r.error for r in refused)


@pytest.mark.anyio
async def test_a_world_not_asked_keeps_no_rings_and_agents_spawned_later_do():
    world = make_world([{"rate": 1.0, "capacity": 10.0}])
    SCRIPTS["a001"] = steps((Noop(), 20.0), Noop())
    await run_world(world, 12.0)
    agent = world.agents["a001"]
    assert agent.recent_actions is None and agent.freezes is None and agent.times_frozen == 1
    remember_history(world)
    assert agent.recent_actions is not None and len(agent.recent_actions) == 0
    r = world.invoke("ledger", "set_rate", agent="a001", rate=0.5)  # frees rate for the spawn
    assert r.ok, r
    r = world.invoke("ledger", "spawn", brain="test_script", rate=0.5)
    assert r.ok, r
    assert world.agents[r.value["agent_id"]].recent_actions is not None


@pytest.mark.anyio
async def test_each_remembered_invoke_keeps_the_arguments_it_was_taken_with():
    """A brain never changes an action once taken (the Boltzmann brain re-aimed one action
    object turn after turn, and every row of the history showed the latest recipient): the
    history shows each transfer's own recipient, as the bus recorded it."""
    from engine.clock import VirtualClock
    from engine.config import load_scenario
    from engine.world import World
    from tui.history import timeline

    world = World(load_scenario("boltzmann").with_agents(6), clock=VirtualClock())
    remember_history(world)
    await world.run(8.0)
    checked = 0
    for aid, agent in world.agents.items():
        sent = [(ev.t, ev.to) for ev in world.bus.recent if ev.kind == "scrip_transferred" and ev.frm == aid]
        taken = [(t, action.args["to"]) for t, action, result, _ in agent.recent_actions
                 if isinstance(action, Invoke) and result.ok]
        assert taken == sent[-len(taken):]
        checked += len(taken) > 1 and len({to for _, to in taken}) > 1
        # and the timeline shows them so
        rows = [what.plain for _, _, tag, what in timeline(world, aid, None, world.clock.now()) if tag.plain == "act"]
        shown = [r.split("to=")[1].split()[0] for r in rows if "to=" in r]
        assert shown and shown == [to for _, to in reversed(taken)][:len(shown)]
    assert checked >= 3  # agents that gave to more than one recipient
