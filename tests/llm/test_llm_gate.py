"""Many LLM agents on one endpoint: at most `max_in_flight` requests at once, the rest
queued in the order they asked, each queued agent shown thinking with its place."""

from __future__ import annotations

import re

import anyio
import pytest
from fake_llm import llm_params, llm_world, reply, slow

from engine.brains.llm_gate import EndpointGate
from tui.details import agent_detail

pytestmark = pytest.mark.anyio


async def test_the_gate_admits_its_limit_and_queues_the_rest_in_order():
    gate = EndpointGate("http://x/v1", 2)
    admitted: list[str] = []

    async def ask(who: str) -> None:
        ticket = await gate.enter(who)
        admitted.append(who)
        await anyio.sleep(0.01)
        gate.leave(ticket)

    async with anyio.create_task_group() as tg:
        for who in "abcde":
            tg.start_soon(ask, who)
            await anyio.lowlevel.checkpoint()
        await anyio.sleep(0)
        assert gate.in_flight == 2 and [t.who for t in gate.queue] == ["c", "d", "e"]
        assert gate.place("c") == 1 and gate.place("e") == 3 and gate.place("a") is None
    assert admitted == list("abcde") and gate.in_flight == 0 and gate.waited_total == 3


async def test_a_cancelled_waiter_leaves_the_queue():
    gate = EndpointGate("e", 1)
    first = await gate.enter("a")
    with anyio.move_on_after(0.01):
        await gate.enter("b")
    assert not gate.queue
    gate.leave(first)
    assert gate.in_flight == 0


async def test_agents_sharing_a_slow_server_wait_their_turn_and_show_their_place(server):
    """Four agents, one request in flight: the server never sees two at once, and a
    queued agent's detail says where it stands."""
    server.default = slow(reply({"action": "sleep", "seconds": 1000}), 0.2)
    world = llm_world(server, params=llm_params(server, max_in_flight=1, timeout=5.0),
                      llm={"count": 4})
    seen: list[str] = []

    async def watch() -> None:
        while len(seen) < 1:
            await anyio.sleep(0.05)
            now = world.clock.now()
            for agent_id in world.agents:
                text = agent_detail(world, agent_id, now, compact=True)
                from rich.console import Console

                console = Console(width=200, record=True)
                console.print(text)
                out = console.export_text()
                if "queued" in out:
                    seen.append(out)

    async with anyio.create_task_group() as tg:
        tg.start_soon(watch)
        await world.run(10.0)
        tg.cancel_scope.cancel()
    assert len(server.requests) == 4
    # One at a time: each request arrived after the one before was answered (0.2 s).
    times = sorted(r.t for r in server.requests)
    assert all(b - a >= 0.15 for a, b in zip(times, times[1:]))
    assert all(a.brain.failed_turns == 0 for a in world.agents.values())
    assert seen and "thinking" in seen[0] and re.search(r"queued [123] of [123] for http://127\.0\.0\.1", seen[0])
