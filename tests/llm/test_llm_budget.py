"""The world's LLM budget: when it is spent, LLM agents stop thinking (no more requests,
no compute charged) while scripted agents in the same world keep acting."""

from __future__ import annotations

import pytest
from fake_llm import llm_params, llm_world, reply

pytestmark = pytest.mark.anyio

TRANSFER = {"action": "invoke", "target": "ledger", "method": "transfer", "args": {"to": "operator", "amount": 1}}


async def test_spent_budget_stops_llm_agents_and_scripted_ones_go_on(server):
    server.default = reply(TRANSFER, prompt=300, completion=100)  # 400 tokens a thought
    # $0.01 per 1k tokens: $0.004 a thought; a $0.01 budget pays two, the third crosses it.
    params = llm_params(server, dollars_per_1k_tokens=0.01, budget_sleep=20.0)
    world = llm_world(
        server, params=params, llm_budget=0.01,
        llm={"count": 2, "rate": 1.0, "capacity": 50.0},
        others=[{"brain": "boltzmann", "prefix": "b", "count": 3, "scrip": 1000, "rate": 1.0, "capacity": 5.0}],
    )
    seen: list = []
    world.bus.add_hook(seen.append)
    await world.run(200.0)

    ledger = world.ledger
    # The budget is spent to the cent and never beyond.
    assert ledger.llm_spent == pytest.approx(0.01)
    assert world.invariants()["llm_within_budget"]
    # Thinking stopped: a few requests, then none, although the agents lived 200 s more.
    assert 3 <= len(server.requests) <= 4
    stopped = [e for e in seen if e.kind == "brain_failed" and "budget exhausted" in e.error]
    assert {e.agent_id for e in stopped} == {"llm001", "llm002"}
    t_stop = max(e.t for e in stopped)
    assert t_stop < 5.0
    for agent_id in ("llm001", "llm002"):
        agent = world.agents[agent_id]
        assert agent.status == "sleeping" and not agent.crashed and agent.total_failures == 0
        assert agent.brain.budget_exhausted
        # It woke every budget_sleep seconds, found the budget spent and slept again,
        # paying nothing: its balance is back at capacity.
        assert ledger.buckets[agent_id].peek(world.clock.now()) == pytest.approx(50.0)
    # Only the thoughts that were paid for became actions.
    llm_transfers = [e for e in seen if e.kind == "scrip_transferred" and e.frm.startswith("llm")]
    assert len(llm_transfers) == 2
    # Scripted agents in the same world kept acting, long after the LLM stopped.
    late = [e for e in seen if e.kind == "scrip_transferred" and e.frm.startswith("b") and e.t > t_stop + 150]
    assert len(late) > 50
    assert all(world.agents[b].actions > 150 for b in ("b001", "b002", "b003"))


async def test_no_budget_means_a_priced_model_never_thinks(server):
    world = llm_world(server, params=llm_params(server, dollars_per_1k_tokens=0.5), llm_budget=0.0)
    await world.run(100.0)
    assert server.requests == []
    assert world.agents["llm001"].status == "sleeping"


async def test_a_free_model_needs_no_budget(server):
    """dollars_per_1k_tokens = 0 (a local model): the world's budget does not apply."""
    server.push(reply(TRANSFER))
    world = llm_world(server, params=llm_params(server), llm_budget=0.0)
    await world.run(30.0)
    assert len(server.requests) == 2 and world.ledger.scrip["llm001"] == 19
    assert world.ledger.llm_spent == 0.0


async def test_thinking_resumes_when_the_budget_has_room_again(server):
    server.default = reply(TRANSFER, prompt=300, completion=100)
    params = llm_params(server, dollars_per_1k_tokens=0.01, budget_sleep=10.0)
    world = llm_world(server, params=params, llm_budget=0.004)  # one thought's worth
    transfers: list[float] = []

    def watch(ev):
        if ev.kind == "scrip_transferred":
            transfers.append(ev.t)
        if ev.kind == "window_closed" and ev.t >= 30.0 and world.ledger.llm_budget < 0.008:
            world.ledger.llm_budget = 0.008  # the budget is topped up at t = 30

    world.bus.add_hook(watch)
    await world.run(100.0)
    assert world.ledger.llm_spent == pytest.approx(0.008)
    assert world.ledger.scrip["llm001"] == 18
    # The first thought at once; the second only after the top-up, at a budget check.
    assert transfers[0] == 0.0 and 30.0 <= transfers[1] <= 40.0
    assert len(server.requests) == 2
