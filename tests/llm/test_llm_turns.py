"""The LLM brain against a real HTTP server on loopback: normal turns, what the prompt
carries, token charging, and the config right over its params."""

from __future__ import annotations

import re

import pytest
from fake_llm import events, llm_params, llm_world, reply

from engine.brains.llm_prompt import observation_in

from engine.actions import Invoke

pytestmark = pytest.mark.anyio


async def test_the_agent_performs_the_action_the_model_chose(server):
    server.push(
        reply({"action": "invoke", "target": "ledger", "method": "transfer",
               "args": {"to": "operator", "amount": 3}, "reason": "pay the operator"}, prompt=400, completion=100),
        reply({"action": "sleep", "seconds": 1000}, prompt=450, completion=50),
    )
    world = llm_world(server, params=llm_params(server, dollars_per_1k_tokens=0.002))
    operator_before = world.ledger.scrip["operator"]
    await world.run(60.0)

    agent = world.agents["llm001"]
    # The transfer went through the real ledger, as the model asked.
    assert world.ledger.scrip["llm001"] == 17
    assert world.ledger.scrip["operator"] == operator_before + 3
    [moved] = events(world, "scrip_transferred")
    assert (moved.frm, moved.to, moved.amount) == ("llm001", "operator", 3)
    # Two thoughts, charged by the tokens they used: 500 tokens * 0.01 each, plus the
    # transfer (0.5) and the sleep (0). Rate 0: the balance is exact.
    assert len(server.requests) == 2
    assert world.ledger.buckets["llm001"].peek(world.clock.now()) == pytest.approx(100 - 5.0 - 0.5 - 5.0)
    # ...and in dollars against the world's LLM budget: 1000 tokens at $0.002 per 1k.
    assert world.ledger.llm_spent == pytest.approx(0.002)
    assert agent.brain.prompt_tokens == 850 and agent.brain.completion_tokens == 150
    assert agent.status == "sleeping" and agent.total_failures == 0
    assert world.invariants() and all(world.invariants().values())


async def test_the_request_carries_time_balances_and_the_vocabulary(server):
    server.push(
        reply({"action": "invoke", "target": "oracle", "method": "bid",
               "args": {"artifact": "note-1", "amount": 2}}),
        reply({"action": "sleep", "seconds": 1000}),
    )
    world = llm_world(server)
    # The agent owns an artifact, and the market has a listing, before it thinks.
    world.artifacts.create("llm001", "data", "a distinctive thought", 0.0, "note-1")
    world.artifacts.create("operator", "data", "for sale", 0.0, "wares")
    assert world.invoke("market", "list", artifact="wares", price=4).ok
    await world.run(30.0)

    first, second = server.requests
    body = first.body
    assert body["model"] == "fake-model"
    # The answer is constrained by the action schema (one branch per agent method).
    schema = body["response_format"]["json_schema"]["schema"]
    assert {"action": {"const": "invoke"}, "target": {"const": "oracle"}, "method": {"const": "bid"},
            "args": {"type": "object", "properties": {"artifact": {"type": "string", "maxLength": 80},
                                                      "amount": {"type": "integer", "minimum": 0}},
                     "required": ["artifact", "amount"], "additionalProperties": False}} in [
        b["properties"] for b in schema["anyOf"]]
    assert body["max_tokens"] == 256 and body["temperature"] == 0.7
    # The vocabulary comes from every service's describe(): each agent method, its params
    # and cost; operator-only methods are left out.
    for service in world.waist.genesis.values():
        for name, m in service.describe()["methods"].items():
            line = f"- {service.id}.{name}("
            if m["operator_only"]:
                assert line not in first.system
            else:
                assert line in first.system
                assert re.search(re.escape(line) + r".*\) cost " + f"{m['cost']:g}", first.system)
                for param in m["params"]:
                    assert param in first.system
    assert "scrip_transferred" in first.system  # event kinds to sleep until
    # The observation: time injected, balances, artifacts, listings.
    # Compact lines (a small model's tokenizer spends a token on every quote and brace).
    obs = observation_in(first.user)
    assert obs["you"] == "llm001"
    assert obs["wall time"] == "2026-01-01T00:00:00+00:00"
    assert obs["next oracle resolution in (s)"] == "60"
    assert obs["scrip"] == "20" and obs["compute"] == "100"
    assert f"note-1: kind data, size {world.artifacts.get('note-1').size}" in obs["your artifacts"]
    assert re.match(r"listing-\d+: seller operator, artifact wares, kind data, price 4$", obs["open listings"])
    assert obs["your open bids"] == "none"
    # The second turn sees its open bid, the later time and the result of the bid.
    obs2 = observation_in(second.user)
    assert obs2["your open bids"] == "note-1 2"
    assert obs2["scrip"] == "18"
    assert "## Your recent turns" in second.user
    assert 'invoke oracle.bid {"artifact":"note-1","amount":2} -> ok' in second.user


async def test_contracts_and_refusals_are_shown(server):
    server.push(
        reply({"action": "invoke", "target": "ledger", "method": "transfer",
               "args": {"to": "nobody", "amount": 1}}),
        reply({"action": "sleep", "seconds": 1000}),
    )
    world = llm_world(server)
    offer = Invoke("contracts", "offer", {"debtor": "llm001", "principal": 5, "rate_per_day": 0.5, "due_in": 100.0})
    assert world.waist.perform("operator", offer, 0.0).ok
    await world.run(30.0)
    first, second = server.requests
    obs = observation_in(first.user)
    loan = obs["your contracts"]
    assert ";" not in loan  # one contract
    assert "roles debtor" in loan and "status offered" in loan and "principal 5" in loan
    # A refusal by the world is a result the model sees, with the reason.
    assert "unknown recipient 'nobody'" in second.user
    assert world.agents["llm001"].refused == 1


async def test_whoever_owns_the_config_right_changes_the_params(server):
    """The params are part of the tradeable config right: here the model itself, owning
    its own right, switches to another model and prompt; the next request uses them."""
    new = llm_params(server, model="bigger-model", system_prompt="You are a careful banker.",
                     temperature=0.1, max_tokens=64, json_mode=False)
    server.push(
        reply({"action": "invoke", "target": "rights", "method": "configure",
               "args": {"agent": "llm001", "params": new}}),
        reply({"action": "sleep", "seconds": 1000}),
    )
    world = llm_world(server)
    await world.run(30.0)
    first, second = server.requests
    assert first.body["model"] == "fake-model"
    assert second.body["model"] == "bigger-model"
    # The role opens the user message; the system prefix stays the one every agent shares.
    assert second.user.startswith("## Your role\nYou are a careful banker.")
    assert second.system == first.system
    assert second.body["temperature"] == 0.1 and second.body["max_tokens"] == 64
    assert "response_format" not in second.body
    # Someone else cannot: the refusal names the owner.
    r = world.invoke("rights", "configure", agent="llm001", params={"model": "x"})
    assert not r.ok and "owned by llm001" in r.error
    # Bad params are refused with the field named, and change nothing.
    world.invoke("ledger", "transfer_artifact", principal="llm001", artifact="config:llm001", to="operator")
    r = world.invoke("rights", "configure", agent="llm001", params={**new, "temperature": "hot"})
    assert not r.ok and "temperature" in r.error


async def test_the_api_key_comes_from_the_named_environment_variable(server, monkeypatch):
    monkeypatch.setenv("ECOLOGY_TEST_LLM_KEY", "sk-test-123")
    world = llm_world(server, params=llm_params(server, api_key_env="ECOLOGY_TEST_LLM_KEY"))
    await world.run(10.0)
    assert server.requests[0].headers.get("authorization") == "Bearer sk-test-123"

    world = llm_world(server)  # no api_key_env: a placeholder local servers ignore
    await world.run(10.0)
    assert server.requests[-1].headers.get("authorization") == "Bearer not-needed"


async def test_a_slow_model_never_blocks_the_event_loop(server):
    """While a request is in flight, everything else on the loop keeps running."""
    import anyio
    from fake_llm import slow

    delay, tick = 0.4, 0.01
    server.push(slow(reply({"action": "sleep", "seconds": 1000}), delay))
    world = llm_world(server)
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await anyio.sleep(tick)
            ticks += 1

    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        await world.run(10.0)
        tg.cancel_scope.cancel()
    assert len(server.requests) == 1
    assert ticks >= 10  # ~40 ticks fit in the 0.4 s the model took
    # Virtual time did not jump past the call: the world (ending at t = 10) was still at
    # t = 0 when the answer came, so the agent got to act on it.
    assert world.agents["llm001"].status == "sleeping"
    assert world.agents["llm001"].actions == 1 and world.agents["llm001"].detail == "sleep 600s"  # capped at max_sleep


async def test_the_prefix_is_shared_and_the_observation_stays_small(server):
    """Every agent's system message is one text (the server's prompt cache serves it), and
    the agent's own message stays bounded however crowded the world: the newest few of
    each list, how many more there are, and what changed since its last turn."""
    server.responder = lambda body: reply(
        {"action": "sleep", "seconds": 1000} if "## Changed" in body["messages"][-1]["content"]
        else {"action": "write", "content": "a fresh idea", "kind": "data"})
    lender = {"brain": "llm", "prefix": "len", "count": 1, "scrip": 20, "rate": 0.0, "capacity": 100.0,
              "params": llm_params(server, system_prompt="You are a lender.")}
    world = llm_world(server, others=[lender])
    for i in range(100):
        world.artifacts.create("llm001", "data", f"note {i}", 0.0, f"note-{i}")
        world.artifacts.create("operator", "data", f"ware {i}", 0.0, f"ware-{i}")
        assert world.invoke("market", "list", artifact=f"ware-{i}", price=1 + i).ok
    await world.run(30.0)
    by_agent: dict[str, list] = {}
    for r in server.requests:
        by_agent.setdefault(observation_in(r.user)["you"], []).append(r)
    assert set(by_agent) == {"llm001", "len001"}
    assert len({r.system for r in server.requests}) == 1
    first, second = by_agent["llm001"][:2]
    obs = observation_in(first.user)
    assert obs["your artifacts"].count("; ") == 4 and obs["your artifacts"].endswith("(+96 more)")  # its config right too
    assert obs["open listings"].count("; ") == 4 and obs["open listings"].endswith("(+95 more)")
    assert all(len(r.user) < 2400 for r in server.requests)  # about 600 tokens at most
    # The second turn says what its write changed.
    assert "## Changed since your last turn" in second.user
    assert by_agent["len001"][0].user.startswith("## Your role\nYou are a lender.")
