"""What goes wrong with a model is a charged, failed turn the model hears about next turn,
never a crash: malformed answers, rate limits (429 + Retry-After), timeouts, refusals."""

from __future__ import annotations

import time

import pytest
from fake_llm import error, events, llm_params, llm_world, rate_limited, reply, slow

pytestmark = pytest.mark.anyio


def compute(world, agent="llm001"):
    return world.ledger.buckets[agent].peek(world.clock.now())


async def test_malformed_json_is_a_charged_failed_turn_shown_next_turn(server):
    server.push(
        reply("Sure! I will transfer {to: operator, amount: 1", prompt=40, completion=10),   # not JSON
        reply({"action": "invoke", "target": "ledger"}, prompt=40, completion=10),          # no method
        reply({"action": "dance"}, prompt=40, completion=10),                               # no such action
        reply('```json\n{"action": "invoke", "target": "ledger", "method": "transfer", '
              '"args": {"to": "operator", "amount": 2}}\n```', prompt=40, completion=10),   # fenced: fine
        reply({"action": "sleep", "seconds": 1000}, prompt=40, completion=10),
    )
    world = llm_world(server)
    await world.run(60.0)

    agent = world.agents["llm001"]
    brain = agent.brain
    reqs = server.requests
    assert len(reqs) == 5
    # Each failed turn is shown to the model on the next one, with what was wrong.
    assert "## Your last turn failed" not in reqs[0].user
    assert "not valid JSON" in reqs[1].user and "Sure! I will transfer" in reqs[1].user
    assert "invoke.method: Field required" in reqs[2].user
    assert "'dance'" in reqs[3].user and "noop" in reqs[3].user
    assert "## Your last turn failed" not in reqs[4].user  # the fenced answer was fine
    # ...and the fenced one was carried out.
    assert world.ledger.scrip["llm001"] == 18
    # Charged: 50 tokens * 0.01 per thought, failed or not, + noop 0.1 for each failed turn,
    # + the transfer 0.5.
    assert compute(world) == pytest.approx(100 - 5 * 0.5 - 3 * 0.1 - 0.5)
    assert brain.failed_turns == 3
    # Not an exception: the agent never backed off, never crashed.
    assert agent.total_failures == 0 and not agent.crashed
    assert agent.status == "sleeping"
    # The failures are visible to whoever watches the event stream.
    failed = [e for e in events(world, "brain_failed") if e.agent_id == "llm001"]
    assert len(failed) == 3 and failed[0].error.startswith("llm: your answer was not valid JSON")
    assert [e.failures for e in failed] == [1, 2, 3]


async def test_a_cut_off_answer_says_so(server):
    server.push(reply('{"action": "write", "content": "a very long', finish_reason="length"))
    world = llm_world(server)
    await world.run(10.0)
    assert "cut off at max_tokens=256" in server.requests[1].user


async def test_rate_limited_waits_retry_after_then_retries(server):
    wait = 0.15
    server.push(
        rate_limited(wait),
        reply({"action": "invoke", "target": "ledger", "method": "transfer",
               "args": {"to": "operator", "amount": 1}}, prompt=80, completion=20),
        # The second turn: more 429s than max_retries (2) -> a failed turn.
        rate_limited(0.1), rate_limited(0.1), rate_limited(0.1),
        reply({"action": "sleep", "seconds": 1000}),
    )
    world = llm_world(server)
    await world.run(60.0)

    reqs = server.requests
    assert len(reqs) == 6
    # Retried after the server's Retry-After (real seconds), then it went through.
    assert reqs[1].t - reqs[0].t >= wait - 0.01
    assert world.ledger.scrip["llm001"] == 19
    assert "## Your last turn failed" not in reqs[2].user  # the retry hid the 429
    # Three 429s in a row: the turn fails, charged the floor, and the model is told.
    assert reqs[4].t - reqs[3].t >= 0.09
    assert "rate limited by the server (HTTP 429) (after 3 attempts)" in reqs[5].user
    agent = world.agents["llm001"]
    assert agent.brain.calls == 6 and agent.brain.failed_turns == 1
    # Charged: 100 tokens * 0.01 + transfer 0.5; failed turn: floor 0.1 + noop 0.1; then 120 tokens.
    assert compute(world) == pytest.approx(100 - 1.0 - 0.5 - 0.1 - 0.1 - 1.2)
    assert agent.total_failures == 0 and not agent.crashed


async def test_a_timeout_is_a_charged_failed_turn_and_the_agent_goes_on(server):
    delay = 1.5  # the server answers long after the brain's timeout
    server.push(
        slow(reply({"action": "invoke", "target": "ledger", "method": "transfer",
                    "args": {"to": "operator", "amount": 5}}), delay),
        reply({"action": "sleep", "seconds": 1000}),
    )
    world = llm_world(server, params=llm_params(server, timeout=0.3, max_retries=0, think_cost=2.0))
    started = time.monotonic()
    await world.run(60.0)
    elapsed = time.monotonic() - started

    agent = world.agents["llm001"]
    assert elapsed < delay  # it gave up at its timeout, it did not wait for the answer
    assert len(server.requests) == 2
    assert "did not answer within 0.3s (timeout)" in server.requests[1].user
    assert world.ledger.scrip["llm001"] == 20  # the late answer was never acted on
    # The failed turn cost the floor (2.0) + noop; the next thought cost the floor too
    # (120 tokens * 0.01 = 1.2 < 2.0).
    assert compute(world) == pytest.approx(100 - 2.0 - 0.1 - 2.0)
    assert agent.status == "sleeping" and agent.total_failures == 0 and not agent.crashed


async def test_timeouts_are_retried_within_max_retries(server):
    # The first answer comes after the timeout; the retry's, at once. The timeout leaves
    # the retry half a second of real time (0.2 s failed once in a full run on a busy
    # 2-core machine).
    delay = 1.5
    server.push(
        slow(reply({"action": "noop"}), delay),
        reply({"action": "invoke", "target": "ledger", "method": "transfer",
               "args": {"to": "operator", "amount": 1}}),
    )
    world = llm_world(server, params=llm_params(server, timeout=0.5, max_retries=1))
    await world.run(30.0)
    assert world.ledger.scrip["llm001"] == 19
    assert world.agents["llm001"].brain.failed_turns == 0


async def test_server_errors_are_retried_and_client_errors_are_not(server):
    server.push(
        error(503, "loading model"),
        reply({"action": "noop"}),
        error(404, "model 'fake-model' not found, try pulling it first"),
        reply({"action": "sleep", "seconds": 1000}),
    )
    world = llm_world(server)
    await world.run(30.0)
    reqs = server.requests
    assert len(reqs) == 4
    assert "## Your last turn failed" not in reqs[2].user  # 503 retried, then fine
    assert "HTTP 404" in reqs[3].user and "try pulling it first" in reqs[3].user  # not retried
    assert not world.agents["llm001"].crashed


async def test_an_unreachable_server_is_a_failed_turn(server):
    port = server.port
    server.close()  # nothing listens there now
    params = llm_params(server, base_url=f"http://127.0.0.1:{port}/v1", max_retries=1, think_cost=30.0)
    world = llm_world(server, params=params)
    await world.run(5.0)
    agent = world.agents["llm001"]
    brain = agent.brain
    assert brain.failed_turns >= 1 and "cannot reach" in brain.error
    assert not agent.crashed and agent.total_failures == 0


async def test_without_usage_the_tokens_are_estimated(server):
    server.push(reply({"action": "sleep", "seconds": 1000}, usage=False))
    world = llm_world(server)
    await world.run(10.0)
    brain = world.agents["llm001"].brain
    assert brain.prompt_tokens > 1000  # about 4 characters a token of a ~7 kB prompt
    assert compute(world) < 100 - 10


async def test_a_missing_api_key_crashes_the_agent_with_the_reason(server, monkeypatch):
    """A configuration problem (not the model's fault) is a brain error: the agent backs
    off and is marked crashed, with the reason, for the operator to fix."""
    monkeypatch.delenv("ECOLOGY_NO_SUCH_KEY", raising=False)
    world = llm_world(server, params=llm_params(server, api_key_env="ECOLOGY_NO_SUCH_KEY"))
    await world.run(600.0)
    agent = world.agents["llm001"]
    assert agent.crashed and "ECOLOGY_NO_SUCH_KEY" in agent.last_error
    assert server.requests == []


async def test_a_server_that_refuses_an_answer_format_is_asked_again_with_a_weaker_one(server):
    """auto: a JSON schema first (OpenAI, vLLM, llama-server), then llama-cpp-python's
    json_object with a schema, then plain JSON mode, then plain text, parsed."""
    server.push(
        error(400, "response_format: Input should be 'text' or 'json_object'"),
        error(422, "response_format.schema is not supported"),
        error(400, "response_format of type json_object is not supported by this model"),
        reply({"action": "invoke", "target": "ledger", "method": "transfer",
               "args": {"to": "operator", "amount": 1}}),
    )
    world = llm_world(server, params=llm_params(server, max_retries=0))
    await world.run(30.0)
    first, second, third, fourth, fifth = server.requests
    fmt = first.body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "action"
    schema = fmt["json_schema"]["schema"]
    assert second.body["response_format"] == {"type": "json_object", "schema": schema}
    assert third.body["response_format"] == {"type": "json_object"}
    assert "response_format" not in fourth.body and "response_format" not in fifth.body
    assert world.ledger.scrip["llm001"] == 19
    assert world.agents["llm001"].brain.failed_turns == 0
