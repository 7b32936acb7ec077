"""The agent loop on virtual time (SPEC §2-3): debt freeze and exact thaw, rescues, rate
changes in debt, max_debt, the three kinds of sleep, injected time, crash isolation,
config rights, pause/resume and spawning."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import anyio
import pytest

from ecotest import PARK, SCRIPTS, TURNS, all_true, make_world, run_world, state, steps, times
from engine.actions import Invoke, Noop, Sleep
from engine.clock import RealClock, VirtualClock


def transfer(to: str, amount, what: str = "transfer") -> Invoke:
    return Invoke("ledger", what, {"to": to, "amount": amount})


# -- debt freeze: exact thaw ----------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    "rate, capacity, wait_first, think, thaw",
    [
        (2.0, 10.0, 0.0, 15.0, 2.5),  # -5 at 2/s
        (0.3, 1.0, 0.0, 1.7, 0.7 / 0.3),  # an inexact quotient
        (2.0, 10.0, 5.0, 13.0, 5.0 + 1.5),  # frozen at t=5: the wait counts from there
        (1.0, 10.0, 1.25, 110.0, 1.25 + 100.0),
    ],
)
async def test_debt_freezes_and_thaws_at_exactly_minus_balance_over_rate(rate, capacity, wait_first, think, thaw):
    world = make_world([{"rate": rate, "capacity": capacity}])
    first = [Sleep(seconds=wait_first)] if wait_first else []
    SCRIPTS["a001"] = steps(*first, (Noop(), think), Noop())
    seen: list[tuple[str, list[str], int]] = []
    agent = world.agents["a001"]
    midway = wait_first + (thaw - wait_first) / 2
    await run_world(world, thaw + 10.0, [(midway, lambda: seen.append((agent.status, world.frozen_ids(), len(TURNS["a001"]))))])
    turns_before = len(first) + 1
    # While in debt: frozen, listed as frozen, and no new turn.
    assert seen == [("frozen", ["a001"], turns_before)]
    next_turn = times("a001")[turns_before]
    assert next_turn == pytest.approx(thaw, abs=1e-9)
    assert agent.times_frozen == 1
    assert TURNS["a001"][turns_before].scrip == 10  # a frozen agent keeps its assets
    assert all_true(world.invariants())


@pytest.mark.anyio
async def test_action_cost_alone_can_freeze_and_the_thaw_is_exact():
    world = make_world([{"rate": 0.5, "capacity": 10.0}], costs={"write": 13.0})
    from engine.actions import Write

    SCRIPTS["a001"] = steps(Write("hello"), Noop())
    await run_world(world, 20.0)
    assert times("a001")[:2] == [0.0, pytest.approx(6.0, abs=1e-9)]  # -3 at 0.5/s
    assert TURNS["a001"][1].last.ok


@pytest.mark.anyio
async def test_frozen_agent_never_polls():
    """While frozen the agent waits on one timer: freezing for 1000 s adds one clock jump
    (the thaw) to what the same world does with the agent idle."""

    async def jumps(script) -> int:
        world = make_world([{"rate": 0.001, "capacity": 1.0}])
        SCRIPTS["a001"] = script
        await run_world(world, 2000.0)
        return world.scheduler.jumps

    idle = await jumps(steps(Sleep(seconds=PARK)))
    frozen = await jumps(steps((Noop(), 2.0), Noop()))
    assert times("a001")[-2] == pytest.approx(1000.0, abs=1e-9)
    assert frozen - idle == 1


@pytest.mark.anyio
async def test_no_refill_at_window_edges_in_a_running_world():
    """Windows close at 10 s and 20 s; the balance just keeps accruing from where it was."""
    world = make_world([{"rate": 0.5, "capacity": 10.0}], metrics={"interval": 10.0})
    SCRIPTS["a001"] = steps(Sleep(seconds=9.0), (Noop(), 10.0))  # empty at t=9
    seen = []
    probe = [(t, lambda t=t: seen.append((t, world.ledger.buckets["a001"].peek(world.clock.now()))))
             for t in (9.5, 10.0, 10.5, 19.99, 20.01)]
    await run_world(world, 25.0, probe)
    assert len(world.metrics.windows) >= 2
    assert seen == [(t, pytest.approx(0.5 * (t - 9.0))) for t in (9.5, 10.0, 10.5, 19.99, 20.01)]


# -- rescues --------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_operator_rescue_wakes_a_frozen_agent_at_the_rescue_time():
    world = make_world([{"rate": 1.0, "capacity": 10.0}])
    SCRIPTS["a001"] = steps((Noop(), 20.0), Noop())  # -10: thaw would be t=10
    results = []
    await run_world(world, 30.0, [(3.0, lambda: results.append(
        world.invoke("ledger", "transfer_compute", to="a001", amount=7.0)))])
    assert results[0].ok and results[0].value == {"credited": 7.0, "kept": 0.0}
    assert times("a001")[1] == pytest.approx(3.0, abs=1e-9)
    assert world.ledger.buckets["operator"].peek(30.0) == pytest.approx(93.0)


@pytest.mark.anyio
async def test_agent_rescue_by_another_agent_wakes_at_the_rescue_time():
    world = make_world([{"rate": 1.0, "capacity": 10.0}, {"prefix": "r", "capacity": 30.0, "rate": 0.0}])
    SCRIPTS["a001"] = steps((Noop(), 20.0), Noop())
    SCRIPTS["r001"] = steps(Sleep(seconds=4.0), transfer("a001", 8.0, "transfer_compute"))
    await run_world(world, 30.0)
    assert times("a001")[1] == pytest.approx(4.0, abs=1e-9)  # -6 + 8 at t=4
    assert world.ledger.buckets["r001"].peek(30.0) == pytest.approx(22.0)
    assert world.bus.counts["compute_transferred"] == 1


@pytest.mark.anyio
async def test_partial_rescue_recomputes_the_thaw_time():
    world = make_world([{"rate": 1.0, "capacity": 10.0}])
    SCRIPTS["a001"] = steps((Noop(), 20.0), Noop())
    await run_world(world, 30.0, [(2.0, lambda: world.invoke("ledger", "transfer_compute", to="a001", amount=4.0))])
    assert times("a001")[1] == pytest.approx(6.0, abs=1e-9)  # -8 + 4 = -4 at t=2, 4 s more


@pytest.mark.anyio
async def test_rescue_is_clamped_at_the_receivers_capacity():
    world = make_world([{"rate": 0.0, "capacity": 10.0}, {"prefix": "r", "capacity": 50.0, "rate": 0.0}])
    world.ledger.buckets["a001"].balance = 6.0
    r = world.invoke("ledger", "transfer_compute", principal="r001", to="a001", amount=9.0)
    assert r.ok and r.value == {"credited": 4.0, "kept": 5.0}
    assert world.ledger.buckets["a001"].balance == 10.0
    assert world.ledger.buckets["r001"].balance == 46.0
    ev = [e for e in world.bus.recent if e.kind == "compute_transferred"][-1]
    assert (ev.frm, ev.to, ev.amount, ev.credited) == ("r001", "a001", 9.0, 4.0)


# -- rate change during debt --------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    "at, new_rate, thaw",
    [
        (4.0, 3.0, 4.0 + 6.0 / 3.0),  # faster: -6 at t=4, paid at 3/s
        (2.0, 0.5, 2.0 + 8.0 / 0.5),  # slower: -8 at t=2, paid at 0.5/s
    ],
)
async def test_operator_set_rate_while_frozen_recomputes_the_thaw_from_that_instant(at, new_rate, thaw):
    world = make_world([{"rate": 1.0, "capacity": 10.0}], compute={"total_rate": 20.0})
    SCRIPTS["a001"] = steps((Noop(), 20.0), Noop())
    results = []
    await run_world(world, 40.0, [(at, lambda: results.append(world.invoke("ledger", "set_rate", agent="a001", rate=new_rate)))])
    assert results[0].ok, results[0].error
    assert times("a001")[1] == pytest.approx(thaw, abs=1e-9)
    assert world.ledger.buckets["a001"].rate == new_rate
    assert all_true(world.invariants())


@pytest.mark.anyio
async def test_rate_to_zero_while_frozen_waits_until_rate_returns():
    world = make_world([{"rate": 1.0, "capacity": 10.0}], compute={"total_rate": 20.0})
    SCRIPTS["a001"] = steps((Noop(), 20.0), Noop())
    await run_world(world, 60.0, [
        (2.0, lambda: world.invoke("ledger", "set_rate", agent="a001", rate=0.0)),  # at -8
        (30.0, lambda: world.invoke("ledger", "set_rate", agent="a001", rate=4.0)),
    ])
    assert times("a001")[1] == pytest.approx(32.0, abs=1e-9)


@pytest.mark.anyio
async def test_transfer_rate_from_another_agent_thaws_a_frozen_agent_sooner():
    world = make_world([{"rate": 1.0, "capacity": 10.0}, {"prefix": "r", "rate": 2.0}])
    SCRIPTS["a001"] = steps((Noop(), 20.0), Noop())
    SCRIPTS["r001"] = steps(Sleep(seconds=4.0), transfer("a001", 2.0, "transfer_rate"))
    await run_world(world, 30.0)
    assert times("a001")[1] == pytest.approx(6.0, abs=1e-9)  # -6 at t=4, then 3/s
    assert world.ledger.buckets["r001"].rate == 0.0
    assert all_true(world.invariants())


# -- max_debt -------------------------------------------------------------------------------------


def test_max_debt_refuses_an_action_past_it_and_charges_only_the_thought():
    world = make_world([{"rate": 1.0, "capacity": 10.0}], compute={"max_debt": 5.0}, costs={"noop": 12.0})
    perform, now = world.waist.perform, world.clock.now()
    bucket = world.ledger.buckets["a001"]
    assert perform("a001", Noop(), now).ok  # 10 - 12 = -2: allowed debt
    assert bucket.balance == -2.0
    r = perform("a001", Noop(), now, think_cost=1.0)  # -2 - 1 - 12 < -5
    assert not r.ok and r.code == "max_debt" and "max debt 5" in r.error
    assert bucket.balance == -3.0  # the thought happened and is paid for; the action is not
    assert world.waist.refusals == 1
    # The operator is never charged, so never refused for debt.
    assert perform("operator", Noop(), now).ok


@pytest.mark.anyio
async def test_agent_refused_for_max_debt_saves_up_then_acts():
    world = make_world([{"rate": 1.0, "capacity": 10.0}], compute={"max_debt": 5.0}, costs={"noop": 12.0})
    SCRIPTS["a001"] = steps(Noop(), Noop(), Noop())
    statuses = []
    await run_world(world, 30.0, [(5.0, lambda: statuses.append(world.agents["a001"].status))])
    # t=0: 10-12=-2 ok, frozen 2 s. t=2: 0-12 < -5 refused; saves to 7 (7 s). t=9: 7-12=-5 ok.
    assert times("a001") == [0.0, 2.0, 9.0, 14.0]
    assert [t.last.ok for t in TURNS["a001"][1:]] == [True, False, True]
    assert statuses == ["frozen"]
    assert world.agents["a001"].refused == 1


@pytest.mark.anyio
async def test_action_that_never_fits_max_debt_does_not_busy_loop():
    """Found by this suite: with a full bucket still short of the cost, the agent asked
    again at the same instant forever (300 refused turns at t=0, time never moved)."""
    world = make_world([{"rate": 1.0, "capacity": 10.0}], compute={"max_debt": 5.0}, costs={"noop": 20.0},
                       agents_policy={"backoff_base": 2.0})
    SCRIPTS["a001"] = steps(*[Noop()] * 300)  # 10 - 20 < -5 forever, whatever it saves
    await run_world(world, 9.0)
    assert times("a001") == [0.0, 2.0, 4.0, 6.0, 8.0]  # backs off like a failed turn
    assert all(not t.last.ok and t.last.code == "max_debt" for t in TURNS["a001"][1:])
    assert world.ledger.buckets["a001"].balance == 10.0  # nothing was spent


# -- sleeping ------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_sleep_for_a_duration():
    world = make_world()
    SCRIPTS["a001"] = steps(Sleep(seconds=2.5), Sleep(seconds=0.25), Noop())
    await run_world(world, 10.0)
    assert times("a001")[:3] == [0.0, 2.5, 2.75]
    assert TURNS["a001"][1].last.value == {"woke": "deadline"}


@pytest.mark.anyio
async def test_sleep_until_event_wakes_exactly_when_paid_and_not_before():
    world = make_world([{}, {"prefix": "r"}])
    SCRIPTS["a001"] = steps(Sleep(until_event="scrip_transferred", only_mine=True), Noop())
    SCRIPTS["r001"] = steps(
        Sleep(seconds=3.0), transfer("operator", 1),  # a transfer to someone else: not a001's
        Sleep(seconds=4.0), transfer("a001", 2),  # t=7: pays a001
    )
    statuses = []
    await run_world(world, 20.0, [(5.0, lambda: statuses.append(world.agents["a001"].status))])
    assert statuses == ["sleeping"]
    assert times("a001")[:2] == [0.0, 7.0]
    assert TURNS["a001"][1].last.value == {"woke": "event:scrip_transferred"}
    assert TURNS["a001"][1].scrip == 12


@pytest.mark.anyio
async def test_sleep_until_event_of_any_principal_wakes_at_the_first_one():
    world = make_world([{}, {"prefix": "r"}])
    SCRIPTS["a001"] = steps(Sleep(until_event="scrip_transferred"), Noop())
    SCRIPTS["r001"] = steps(Sleep(seconds=3.0), transfer("operator", 1))
    await run_world(world, 20.0)
    assert times("a001")[:2] == [0.0, 3.0]
    assert TURNS["a001"][1].last.value == {"woke": "event:scrip_transferred"}


@pytest.mark.anyio
async def test_sleep_until_event_with_timeout_wakes_at_the_timeout():
    world = make_world()
    SCRIPTS["a001"] = steps(Sleep(until_event=("scrip_transferred", "compute_transferred"), timeout=4.0), Noop())
    await run_world(world, 10.0)
    assert times("a001")[:2] == [0.0, 4.0]
    assert TURNS["a001"][1].last.value == {"woke": "deadline"}


@pytest.mark.anyio
async def test_sleep_until_operator_event_from_the_operator():
    world = make_world()
    SCRIPTS["a001"] = steps(Sleep(until_event="compute_transferred"), Noop())
    await run_world(world, 10.0, [(6.5, lambda: world.invoke("ledger", "transfer_compute", to="a001", amount=1.0))])
    assert times("a001")[:2] == [0.0, 6.5]


@pytest.mark.anyio
async def test_rescuer_wakes_when_another_agent_freezes():
    """Found by this suite: event sleeps heard only events about the sleeper, so the
    built-in rescuer learnt of a frozen agent only at its patience timeout (t=20)."""
    world = make_world([
        {"rate": 0.1, "capacity": 10.0},
        {"prefix": "r", "brain": "rescuer", "capacity": 30.0, "rate": 1.0, "params": {"patience": 20.0}},
    ])
    SCRIPTS["a001"] = steps(Sleep(seconds=1.0), (Noop(), 30.0), Noop())  # frozen at t=1 (-20)
    await run_world(world, 25.0)
    first_rescue = min(e.t for e in world.bus.recent if e.kind == "compute_transferred")
    assert first_rescue == pytest.approx(1.0)
    assert times("a001")[2] < 201.0  # rescued long before its own thaw


@pytest.mark.anyio
async def test_sleep_until_predicate_wakes_when_a_transfer_makes_it_true_not_by_polling():
    world = make_world([{"scrip": 0}, {"prefix": "r", "scrip": 10}])
    checks: list[float] = []

    def rich_enough(view) -> bool:
        checks.append(world.clock.now())
        return view.scrip >= 5

    SCRIPTS["a001"] = steps(Sleep(until=rich_enough), Noop())
    SCRIPTS["r001"] = steps(
        Sleep(seconds=2.0), transfer("a001", 2),  # scrip 2: still false
        Sleep(seconds=3.0), transfer("a001", 3),  # t=5: scrip 5, true
    )
    await run_world(world, 100.0)
    assert times("a001")[:2] == [0.0, 5.0]
    assert TURNS["a001"][1].last.value == {"woke": "condition"}
    # Checked only when its holdings changed (and once when it lay down), never in between.
    assert set(checks) <= {0.0, 2.0, 5.0}
    assert checks.count(2.0) >= 1 and checks.count(5.0) >= 1 and len(checks) <= 3


@pytest.mark.anyio
async def test_sleep_until_predicate_already_true_does_not_sleep():
    world = make_world()
    SCRIPTS["a001"] = steps(Sleep(until=lambda v: v.scrip >= 5), Sleep(seconds=1.0), Noop())
    await run_world(world, 10.0)
    assert times("a001")[:3] == [0.0, 0.0, 1.0]


@pytest.mark.anyio
async def test_sleep_until_predicate_with_timeout():
    world = make_world([{"scrip": 0}])
    SCRIPTS["a001"] = steps(Sleep(until=lambda v: v.scrip >= 5, timeout=12.0), Noop())
    await run_world(world, 30.0)
    assert times("a001")[:2] == [0.0, 12.0]


# -- time injected into observations ------------------------------------------------------------


@pytest.mark.anyio
async def test_observations_carry_wall_time_and_time_to_next_resolution():
    epoch = datetime(2030, 5, 1, 12, 0, tzinfo=timezone.utc)
    world = make_world(clock=VirtualClock(epoch=epoch), oracle={"resolution_interval": 60.0})
    seen = []

    def observe(view, brain):
        seen.append(view.as_dict())
        return Noop()

    SCRIPTS["a001"] = steps(Sleep(seconds=90.0), observe, Sleep(seconds=29.5), Noop())
    await run_world(world, 200.0)
    turns = TURNS["a001"]
    assert turns[0].wall_time == "2030-05-01T12:00:00+00:00" and turns[0].next_resolution_in == 60.0
    assert turns[1].t == 90.0
    assert turns[1].wall_time == "2030-05-01T12:01:30+00:00"
    assert datetime.fromisoformat(turns[1].wall_time) == epoch + timedelta(seconds=90)
    assert turns[1].next_resolution_in == 30.0
    assert turns[3].t == 119.5 and turns[3].next_resolution_in == pytest.approx(0.5)
    assert seen[0]["wall_time"] == "2030-05-01T12:01:30+00:00"
    assert seen[0]["next_resolution_in_s"] == 30.0 and seen[0]["world_time_s"] == 90.0


# -- crash isolation ----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_failing_brain_backs_off_crashes_and_is_restarted_while_others_run():
    world = make_world(
        [{}, {"prefix": "b"}],
        agents_policy={"max_failures": 3, "backoff_base": 1.0, "backoff_max": 60.0},
    )
    broken = {"on": True}

    def flaky(view, brain):
        if broken["on"]:
            raise RuntimeError("boom")
        return Sleep(seconds=PARK)

    SCRIPTS["a001"] = flaky
    SCRIPTS["b001"] = lambda view, brain: Sleep(seconds=1.0)
    agent = world.agents["a001"]
    probes, results = [], []

    def restart():
        broken["on"] = False
        results.append(world.invoke("world", "restart_agent", agent="a001"))
        results.append(world.invoke("world", "restart_agent", agent="a001"))  # not crashed now

    await run_world(world, 19.5, [
        (0.5, lambda: probes.append(agent.status)),  # backing off
        (5.0, lambda: probes.append(agent.status)),
        (10.0, restart),
    ])
    assert probes == ["sleeping", "crashed"]
    assert times("a001") == [0.0, 1.0, 3.0, 10.0]  # backoff 1 s then 2 s; crashed at the 3rd
    assert results[0].ok
    assert not results[1].ok and "has not crashed" in results[1].error
    assert times("b001") == [float(t) for t in range(20)]  # never disturbed
    assert world.bus.counts["brain_failed"] == 3
    crashed_events = [e for e in world.bus.recent if e.kind == "agent_status" and e.status == "crashed"]
    assert len(crashed_events) == 1 and "boom" in crashed_events[0].detail
    assert agent.total_failures == 3 and agent.failures == 0 and not agent.crashed
    assert all_true(world.invariants())


@pytest.mark.anyio
async def test_backoff_doubles_up_to_its_cap():
    world = make_world(agents_policy={"max_failures": 10, "backoff_base": 1.0, "backoff_max": 3.0})

    def boom(view, brain):
        raise ValueError("nope")

    SCRIPTS["a001"] = boom
    await run_world(world, 14.0)
    assert times("a001") == [0.0, 1.0, 3.0, 6.0, 9.0, 12.0]
    assert world.agents["a001"].status == "sleeping" and not world.agents["a001"].crashed


# -- config rights --------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_config_change_by_the_owner_is_picked_up_at_the_next_turn():
    world = make_world([{"params": {"tag": "one"}}])
    SCRIPTS["a001"] = lambda view, brain: Sleep(seconds=10.0)
    results = {}

    def by_agent():
        results["self"] = world.invoke("rights", "configure", principal="a001", agent="a001", params={"tag": "two"})

    def by_operator():
        results["before"] = state(world)
        results["refused"] = world.invoke("rights", "configure", agent="a001", brain="test_other")
        results["after"] = state(world)

    def hand_over():
        results["give"] = world.invoke("ledger", "transfer_artifact", principal="a001", artifact="config:a001", to="operator")
        results["op"] = world.invoke("rights", "configure", agent="a001", brain="test_other")
        results["agent_now"] = world.invoke("rights", "configure", principal="a001", agent="a001", params={"tag": "x"})

    await run_world(world, 39.5, [(5.0, by_agent), (15.0, by_operator), (25.0, hand_over)])
    turns = TURNS["a001"]
    assert [(t.t, t.brain, t.tag) for t in turns] == [
        (0.0, "test_script", "one"),
        (10.0, "test_script", "two"),
        (20.0, "test_script", "two"),
        (30.0, "test_other", ""),  # another brain: its old params are dropped
    ]
    assert results["self"].ok
    refused = results["refused"]
    assert not refused.ok and refused.code == "not_owner"
    assert "owned by a001" in refused.error
    assert results["before"] == results["after"]
    assert results["give"].ok and results["op"].ok
    assert not results["agent_now"].ok and "owned by operator" in results["agent_now"].error
    assert world.bus.counts["config_changed"] == 2


def test_config_cannot_touch_balances():
    world = make_world()
    before = state(world)
    for args in ({"scrip": 1000}, {"params": {"scrip": 1000}}, {"think_delay": -1}, {"brain": "nope"}, {}):
        r = world.invoke("rights", "configure", principal="a001", agent="a001", **args)
        assert not r.ok, args
    assert state(world) == before


def test_rights_owner_names_the_owner():
    world = make_world()
    r = world.invoke("rights", "owner", agent="a001")
    assert r.ok and r.value == {"agent": "a001", "config_right": "config:a001", "owner": "a001"}


# -- pause / resume -------------------------------------------------------------------------------


def test_paused_world_accrues_nothing_on_a_real_clock():
    mono = [500.0]
    world = make_world([{"rate": 2.0, "capacity": 100.0}], clock=RealClock(monotonic=lambda: mono[0]))
    ledger = world.ledger
    ledger.buckets["a001"].spend(100.0, world.clock.now())  # empty at t=0
    mono[0] += 3.0
    assert ledger.compute("a001", world.clock.now()) == pytest.approx(6.0)
    assert world.invoke("world", "pause").ok
    assert world.paused and all(a.held for a in world.agents.values())
    mono[0] += 1000.0
    assert world.clock.now() == pytest.approx(3.0)
    assert ledger.compute("a001", world.clock.now()) == pytest.approx(6.0)
    again = world.invoke("world", "pause")
    assert not again.ok and "already paused" in again.error
    assert world.invoke("world", "resume").ok
    mono[0] += 1.0
    assert world.clock.now() == pytest.approx(4.0)
    assert ledger.compute("a001", world.clock.now()) == pytest.approx(8.0)
    assert not world.invoke("world", "resume").ok


@pytest.mark.anyio
async def test_paused_world_stops_time_and_agents_until_resumed():
    world = make_world([{}, {"prefix": "b"}])
    for a in ("a001", "b001"):
        SCRIPTS[a] = lambda view, brain: Sleep(seconds=1.0)
    paused = anyio.Event()

    def pause():
        assert world.invoke("world", "pause").ok
        paused.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(run_world, world, 9.75, [(5.5, pause)])
        await paused.wait()
        counts = {a: len(TURNS[a]) for a in ("a001", "b001")}
        for _ in range(20):  # everything blocks; time does not jump, nobody acts
            await anyio.wait_all_tasks_blocked()
        assert world.clock.now() == 5.5
        assert {a: len(TURNS[a]) for a in ("a001", "b001")} == counts == {"a001": 6, "b001": 6}
        assert world.running
        assert world.invoke("world", "resume").ok
    assert not world.running and world.clock.now() == 9.75
    # A resume does not cut a sleep short, and the turns go on where they were.
    assert times("a001") == [float(t) for t in range(10)]


@pytest.mark.anyio
async def test_pause_and_stop_one_agent():
    world = make_world([{}, {"prefix": "b"}])
    for a in ("a001", "b001"):
        SCRIPTS[a] = lambda view, brain: Sleep(seconds=1.0)
    results, statuses = [], []
    await run_world(world, 9.75, [
        (2.5, lambda: results.append(world.invoke("world", "pause_agent", agent="a001"))),
        (4.0, lambda: statuses.append(world.agents["a001"].status)),
        (5.5, lambda: results.append(world.invoke("world", "resume_agent", agent="a001"))),
        (7.5, lambda: results.append(world.invoke("world", "stop_agent", agent="b001"))),
    ])
    assert all(r.ok for r in results)
    # Paused at 2.5 during a sleep: held when it ends at 3; released at once at 5.5.
    assert times("a001") == [0.0, 1.0, 2.0, 5.5, 6.5, 7.5, 8.5, 9.5]
    assert statuses == ["paused"]
    assert times("b001") == [float(t) for t in range(8)]
    assert world.agents["b001"].status == "stopped" and "b001" not in world.live_ids
    assert world.ledger.scrip["b001"] == 10  # a stopped agent keeps its assets


# -- spawning while running --------------------------------------------------------------------


@pytest.mark.anyio
async def test_spawned_agent_starts_running_at_once():
    world = make_world([{"scrip": 20, "rate": 3.0}])
    results = []

    def spawn(view, brain):
        return Invoke("ledger", "spawn", {"brain": "test_script", "rate": 1.0, "scrip": 5, "agent_id": "kid"})

    SCRIPTS["a001"] = steps(Sleep(seconds=2.0), spawn, lambda v, b: (results.append(v.last_result), Sleep(seconds=PARK))[1])
    SCRIPTS["kid"] = lambda view, brain: Sleep(seconds=1.5)
    await run_world(world, 6.0)
    assert results[0].ok and results[0].value == {"agent_id": "kid"}
    assert times("kid") == [2.0, 3.5, 5.0]
    assert world.ledger.scrip["kid"] == 5 and world.ledger.scrip["a001"] == 15
    assert world.ledger.buckets["kid"].rate == 1.0 and world.ledger.buckets["a001"].rate == 2.0
    assert all_true(world.invariants())


@pytest.mark.anyio
async def test_agent_spawned_in_a_paused_world_waits_for_resume():
    world = make_world([{"scrip": 20, "rate": 3.0}], compute={"total_rate": 10.0})
    SCRIPTS["a001"] = lambda view, brain: Sleep(seconds=1.0)
    SCRIPTS["kid"] = lambda view, brain: (
        Invoke("ledger", "transfer", {"to": "a001", "amount": 1}) if view.scrip else Sleep(seconds=1.0))
    paused = anyio.Event()

    def pause():
        assert world.invoke("world", "pause").ok
        paused.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(run_world, world, 9.5, [(2.5, pause)])
        await paused.wait()
        r = world.invoke("ledger", "spawn", brain="test_script", rate=0.5, scrip=3, agent_id="kid")
        assert r.ok, r.error
        for _ in range(10):
            await anyio.wait_all_tasks_blocked()
        acted_while_paused = (list(times("kid")), world.ledger.scrip["kid"])
        assert world.invoke("world", "resume").ok
    assert acted_while_paused == ([], 3)
    assert times("kid")[0] == 2.5 and world.ledger.scrip["kid"] == 0  # it acts once resumed


@pytest.mark.anyio
async def test_zero_second_sleeps_do_not_starve_other_agents():
    world = make_world([{}, {"prefix": "b"}])
    seen: list[int] = []
    SCRIPTS["a001"] = steps(*[Sleep(seconds=0.0)] * 5000)  # a brain that "sleeps" 0 s, again and again
    SCRIPTS["b001"] = lambda view, brain: (seen.append(len(TURNS["a001"])), Sleep(seconds=1.0))[1]
    await run_world(world, 0.5)
    slice_actions = world.config.agents_policy.slice_actions
    # b001's first turn comes within a slice or two of a001's, as it does for any other
    # action. (A brain that always returns Sleep(0) would hang a world for ever.)
    assert seen[0] <= 2 * slice_actions


@pytest.mark.anyio
async def test_agent_done_saving_for_max_debt_is_no_longer_listed_frozen():
    world = make_world([{"rate": 1.0, "capacity": 10.0}], compute={"max_debt": 5.0}, costs={"noop": 8.0},
                       metrics={"interval": 10.0})
    world.ledger.buckets["a001"].balance = 0.0
    SCRIPTS["a001"] = steps(Noop(), Sleep(seconds=100.0))  # refused at 0 (0-8 < -5), saves 3 s
    probes = []

    def probe():
        probes.append((world.agents["a001"].status, world.frozen_ids()))

    await run_world(world, 45.0, [(1.0, probe), (40.0, probe)])
    assert times("a001") == [0.0, 3.0]
    assert probes[0] == ("frozen", ["a001"])  # saving up
    assert probes[1] == ("sleeping", [])
    assert [w["frozen"] for w in world.metrics.windows][1:] == [0, 0, 0, 0]


# -- pace -----------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_cheap_thinker_acts_more_often_than_an_expensive_one():
    world = make_world([{"rate": 1.0, "capacity": 5.0}, {"prefix": "x", "rate": 1.0, "capacity": 5.0}])
    SCRIPTS["a001"] = lambda view, brain: (setattr(brain, "thought_cost", 1.0), Noop())[1]
    SCRIPTS["x001"] = lambda view, brain: (setattr(brain, "thought_cost", 4.0), Noop())[1]
    await run_world(world, 100.5)
    cheap, dear = world.agents["a001"].actions, world.agents["x001"].actions
    # Both spend their 1/s: about 100/1 + 5 turns against 100/4 + 2.
    assert cheap == pytest.approx(105, abs=2) and dear == pytest.approx(27, abs=2)


@pytest.mark.anyio
async def test_think_delay_takes_world_time_and_a_new_one_applies_at_the_next_turn():
    world = make_world([{"think_delay": 2.0}])
    SCRIPTS["a001"] = lambda view, brain: Sleep(seconds=1.0)
    await run_world(world, 12.0, [(6.5, lambda: world.invoke("rights", "configure", principal="a001",
                                                              agent="a001", think_delay=0.5))])
    # Thinks 2 s, sleeps 1 s; the change lands during the thought that began at 6.
    assert times("a001") == [2.0, 5.0, 8.0, 9.5, 11.0]


@pytest.mark.anyio
async def test_work_due_outside_the_agents_runs_within_a_burst_not_after_a_round():
    # A journal commit falls due while every agent can run. The scheduler looks at the wall
    # clock every CHECK_EVERY items of a burst and runs due work there, so it waits for at
    # most that many slices, never for a round of all 200 agents' slices.
    from engine.scheduler import CHECK_EVERY

    world = make_world([{"count": 200}])
    for i in range(1, 201):
        SCRIPTS[f"a{i:03d}"] = steps(*[Sleep(seconds=0.0)] * 300)
    ran_at: list[int] = []

    def commit() -> None:
        ran_at.append(world.total_actions)
        if len(ran_at) < 20:
            world.schedule_due(0.0, commit)  # due again at once (the monotonic clock is past 0)

    world.schedule_due(0.0, commit)
    await run_world(world, 1.0)
    slice_actions = world.config.agents_policy.slice_actions
    assert len(ran_at) == 20 and ran_at[0] == 0  # before anyone's first turn
    gaps = [b - a for a, b in zip(ran_at, ran_at[1:])]
    assert max(gaps) <= CHECK_EVERY * slice_actions < 200 * slice_actions, gaps
    assert world.due_at == float("inf")  # nothing left due
