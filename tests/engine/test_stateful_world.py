"""A hypothesis state machine over a world's operations (issue 2, item 2).

Random sequences of scrip transfers (with invalid amounts), compute spends and rescues,
rate moves, spawns, artifact writes/deletes/transfers, operator levers and time advances.
After every step every invariant holds and no scrip balance is negative; every refused
operation left the world exactly as it was; every accepted one did exactly what it says.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from ecotest import make_world, state
from engine.actions import Delete, Noop, Write
from engine.ledger import MICRO
from engine.waist import OPERATOR

BAD_NAMES = ["nobody", "", "ledger", "system", None, 7, ["a001"], {"id": "a001"}]
WEIRD = [0, -1, -(10**9), 10**30, 2**63, True, False, 1.0, 2.5, -0.5, math.nan, math.inf, -math.inf, "5", None, [1], {"n": 1}]
SCRIP_AMOUNTS = st.one_of(st.integers(-3, 40), st.sampled_from(WEIRD), st.floats(-10, 50))
QUANTITIES = st.one_of(st.floats(1e-6, 40.0), st.integers(-2, 40), st.sampled_from(WEIRD))
# Rates for spawn, including ones below the smallest unit (1e-6), which must be refused.
SPAWN_RATES = st.one_of(st.floats(1e-6, 3.0), st.floats(0.0, 2e-6), st.integers(-1, 3),
                        st.sampled_from([0, -0.5, 1e-9, 4e-7, math.nan, math.inf, True, "1", None]))
CONTENT = st.one_of(st.text(max_size=40), st.integers(), st.dictionaries(st.text(max_size=5), st.integers(), max_size=3))
EPS = 1e-6


class WorldMachine(RuleBasedStateMachine):
    @initialize()
    def build(self) -> None:
        self.world = make_world(
            [
                {"count": 3, "scrip": 10, "rate": 1.0, "capacity": 10.0},
                {"prefix": "b", "count": 2, "scrip": 3, "rate": 2.0, "capacity": 5.0},
            ],
            compute={"total_rate": 20.0, "max_debt": 30.0},
            operator={"scrip": 50, "capacity": 100.0},
            agents_policy={"disk_quota": 120},
        )
        self.refusals = 0
        self.accepted = 0

    # -- helpers ---------------------------------------------------------------------------------
    def principals(self) -> list[str]:
        return list(self.world.ledger.scrip)

    def agents(self) -> list[str]:
        return list(self.world.agents)

    def someone(self, data, bad: bool = True):
        choices = self.principals() + (BAD_NAMES if bad else [])
        return data.draw(st.sampled_from(choices))

    def bal(self, p: str) -> float:
        return self.world.ledger.buckets[p].peek(self.world.clock.now())

    def refused(self, result, before) -> None:
        self.refusals += 1
        assert isinstance(result.error, str) and result.error, result
        assert state(self.world) == before, result.error

    # -- rules -------------------------------------------------------------------------------------
    @rule(data=st.data(), amount=SCRIP_AMOUNTS)
    def transfer_scrip(self, data, amount) -> None:
        frm, to = self.someone(data, bad=False), self.someone(data)
        before = state(self.world)
        r = self.world.invoke("ledger", "transfer", principal=frm, to=to, amount=amount)
        if not r.ok:
            return self.refused(r, before)
        self.accepted += 1
        assert type(amount) is int and amount > 0 and frm != to
        assert self.world.ledger.scrip[frm] == before["scrip"][frm] - amount
        assert self.world.ledger.scrip[to] == before["scrip"][to] + amount

    @rule(data=st.data(), think=st.floats(0.0, 45.0))
    def spend_compute(self, data, think) -> None:
        """An agent's thought: spending always succeeds unless it passes max_debt."""
        agent = data.draw(st.sampled_from(self.agents()))
        had = self.bal(agent)
        r = self.world.waist.perform(agent, Noop(), self.world.clock.now(), think_cost=think)
        assert self.bal(agent) == pytest.approx(had - think, abs=EPS)  # the thought is paid either way
        if r.ok:
            assert had - think >= -30.0 - EPS
        else:
            assert r.code == "max_debt" and had - think < -30.0 + EPS

    @rule(data=st.data(), amount=QUANTITIES)
    def rescue(self, data, amount) -> None:
        frm, to = self.someone(data, bad=False), self.someone(data)
        before = state(self.world)
        r = self.world.invoke("ledger", "transfer_compute", principal=frm, to=to, amount=amount)
        if not r.ok:
            return self.refused(r, before)
        self.accepted += 1
        credited, kept = r.value["credited"], r.value["kept"]
        assert 0.0 <= credited <= amount + EPS and kept == pytest.approx(amount - credited)
        assert before["compute"][frm] >= amount - EPS  # came from a positive balance covering it
        assert self.bal(to) == pytest.approx(min(before["compute"][to] + amount, before["capacity"][to]), abs=EPS)
        assert self.bal(frm) == pytest.approx(before["compute"][frm] - credited, abs=EPS)

    @rule(data=st.data(), amount=QUANTITIES)
    def move_rate(self, data, amount) -> None:
        frm, to = self.someone(data, bad=False), self.someone(data)
        before = state(self.world)
        r = self.world.invoke("ledger", "transfer_rate", principal=frm, to=to, amount=amount)
        if not r.ok:
            return self.refused(r, before)
        self.accepted += 1
        moved = round(r.value["moved"] * MICRO)
        assert moved > 0
        assert self.world.ledger.rate_micro[frm] == before["rate_micro"][frm] - moved
        assert self.world.ledger.rate_micro[to] == before["rate_micro"][to] + moved

    @rule(data=st.data(), rate=QUANTITIES)
    def operator_sets_rate(self, data, rate) -> None:
        agent = data.draw(st.sampled_from(self.agents() + BAD_NAMES))
        before = state(self.world)
        r = self.world.invoke("ledger", "set_rate", agent=agent, rate=rate)
        if not r.ok:
            return self.refused(r, before)
        self.accepted += 1
        assert self.world.ledger.buckets[agent].rate == pytest.approx(float(rate), abs=1e-6)

    @rule(data=st.data(), capacity=QUANTITIES)
    def operator_sets_capacity(self, data, capacity) -> None:
        agent = data.draw(st.sampled_from(self.agents() + BAD_NAMES))
        before = state(self.world)
        r = self.world.invoke("ledger", "set_capacity", agent=agent, capacity=capacity)
        if not r.ok:
            return self.refused(r, before)
        self.accepted += 1
        assert self.world.ledger.buckets[agent].capacity == float(capacity)
        assert self.bal(agent) <= float(capacity) + EPS

    @rule(data=st.data(), rate=SPAWN_RATES, scrip=SCRIP_AMOUNTS,
          brain=st.sampled_from(["test_script", "boltzmann", "no_such_brain", 3]))
    def spawn(self, data, rate, scrip, brain) -> None:
        parent = self.someone(data, bad=False)
        before = state(self.world)
        r = self.world.invoke("ledger", "spawn", principal=parent, brain=brain, rate=rate, scrip=scrip)
        if not r.ok:
            return self.refused(r, before)
        self.accepted += 1
        child = r.value["agent_id"]
        ledger = self.world.ledger
        assert child not in before["scrip"] and child in self.world.agents
        assert ledger.scrip[child] == scrip and ledger.scrip[parent] == before["scrip"][parent] - scrip
        assert ledger.rate_micro[child] == round(rate * MICRO)
        assert ledger.rate_micro[parent] == before["rate_micro"][parent] - round(rate * MICRO)

    @rule(data=st.data(), content=CONTENT, kind=st.sampled_from(["data", "data", "code", "config", "genesis"]))
    def write(self, data, content, kind) -> None:
        writer = data.draw(st.sampled_from(self.agents() + [OPERATOR]))
        existing = list(self.world.artifacts.by_id)
        target = data.draw(st.sampled_from(existing + [None, "note", "x:1", "bad id!", "-dash"]))
        before = state(self.world)
        r = self.world.waist.perform(writer, Write(content, target, kind), self.world.clock.now())
        if not r.ok:
            return self.refused(r, before)
        self.accepted += 1
        art = self.world.artifacts.get(r.value["artifact_id"])
        assert art.owner == writer and art.kind in ("data", "code") and art.content == content
        if target in before["artifacts"]:
            assert before["artifacts"][target][1] == writer  # only the owner overwrites

    @rule(data=st.data())
    def delete(self, data) -> None:
        who = data.draw(st.sampled_from(self.agents() + [OPERATOR]))
        target = data.draw(st.sampled_from(list(self.world.artifacts.by_id) + ["nothing"]))
        before = state(self.world)
        r = self.world.waist.perform(who, Delete(target), self.world.clock.now())
        if not r.ok:
            return self.refused(r, before)
        self.accepted += 1
        assert before["artifacts"][target][1] == who and target not in self.world.artifacts

    @rule(data=st.data())
    def transfer_artifact(self, data) -> None:
        frm, to = self.someone(data, bad=False), self.someone(data)
        target = data.draw(st.sampled_from(list(self.world.artifacts.by_id) + ["nothing", None]))
        before = state(self.world)
        r = self.world.invoke("ledger", "transfer_artifact", principal=frm, artifact=target, to=to)
        if not r.ok:
            return self.refused(r, before)
        self.accepted += 1
        assert before["artifacts"][target][1] == frm
        assert self.world.artifacts.get(target).owner == to

    @rule(data=st.data())
    def agent_tries_operator_levers(self, data) -> None:
        agent = data.draw(st.sampled_from(self.agents()))
        target, method, args = data.draw(st.sampled_from([
            ("world", "pause", {}),
            ("world", "stop_agent", {"agent": "a001"}),
            ("ledger", "set_rate", {"agent": agent, "rate": 100.0}),
            ("ledger", "set_capacity", {"agent": agent, "capacity": 1000.0}),
            ("ledger", "mint", {"to": agent, "amount": 5}),
            ("ledger", "transfer", {"to": "a001", "amount": 1, "from": "b001"}),
            ("ledger", "transfer", {"amount": 1}),
            ("oracle", "bid", {"artifact": "x", "amount": 1}),
        ]))
        before = state(self.world)
        r = self.world.invoke(target, method, principal=agent, **args)
        assert not r.ok
        self.refused(r, before)

    @rule(dt=st.one_of(st.floats(0.0, 30.0), st.sampled_from([0.0, 1e-9, 1000.0])))
    def advance_time(self, dt) -> None:
        self.world.clock.advance(dt)

    # -- invariants --------------------------------------------------------------------------------
    @invariant()
    def world_invariants_hold(self) -> None:
        inv = self.world.invariants()
        assert inv and all(inv.values()), inv

    @invariant()
    def scrip_never_negative_and_conserved(self) -> None:
        ledger = self.world.ledger
        assert all(type(v) is int and v >= 0 for v in ledger.scrip.values())
        assert ledger.scrip_supply + ledger.held_total == ledger.initial_scrip + ledger.minted
        assert ledger.minted == 0  # nothing here mints

    @invariant()
    def compute_within_capacity(self) -> None:
        now = self.world.clock.now()
        for p, b in self.world.ledger.buckets.items():
            assert b.peek(now) <= b.capacity + EPS, p

    @invariant()
    def every_agent_is_whole(self) -> None:
        world = self.world
        for agent_id in world.agents:
            assert world.ledger.has(agent_id)
            assert world.artifacts.get(f"config:{agent_id}").kind == "config"
        principals = set(world.ledger.scrip) | {"system"}
        assert all(a.owner in principals for a in world.artifacts.by_id.values())


WorldMachine.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestWorldMachine = WorldMachine.TestCase


def test_machine_exercises_both_paths():
    """One long fixed run: both accepted and refused operations actually happen."""
    from hypothesis.stateful import run_state_machine_as_test

    seen = {"accepted": 0, "refusals": 0}

    class Counting(WorldMachine):
        def teardown(self) -> None:
            seen["accepted"] += self.accepted
            seen["refusals"] += self.refusals

    run_state_machine_as_test(Counting, settings=settings(max_examples=5, stateful_step_count=50, deadline=None, derandomize=True))
    assert seen["accepted"] > 0 and seen["refusals"] > 0
