"""A real local model: the llama.cpp server started on loopback serving SmolLM2-135M (the
[local-llm] extra), real turns with schema-constrained answers that parse into valid
actions, their tokens charged to compute and to the budget, the prompt prefix served
from the server's cache, and the server ended with the run.

Without the extra these tests skip and say why, except where ECOLOGY_REQUIRE_LOCAL_LLM
is set (CI sets it): there a missing local model is a failure, not a skip.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request

import anyio
import pytest

from engine.local_llm import (
    LocalModelError,
    default_model_path,
    local_server,
    resolve_model,
    running_servers,
    server_available,
    stop_local_servers,
)

pytestmark = [pytest.mark.local_llm, pytest.mark.slow]

if not (server_available() and default_model_path() is not None):
    if os.environ.get("ECOLOGY_REQUIRE_LOCAL_LLM"):
        raise RuntimeError("ECOLOGY_REQUIRE_LOCAL_LLM is set but the [local-llm] extra is not installed")
    pytest.skip("the [local-llm] extra is not installed (pip install -e '.[local-llm]')", allow_module_level=True)


@pytest.fixture(scope="module", autouse=True)
def _stop_servers():
    yield
    stop_local_servers()


def test_the_server_starts_on_a_loopback_port_answers_and_ends():
    server = local_server()
    assert server.running and server.host == "127.0.0.1" and 1024 <= server.port < 65536
    with urllib.request.urlopen(f"{server.url}/models", timeout=10) as r:
        assert r.status == 200
    assert local_server() is server  # one per model, shared
    assert server in running_servers()
    pid = server.process.pid
    stop_local_servers()
    assert not server.running and running_servers() == []
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_bad_model_file_is_refused_with_the_reason(tmp_path):
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"not a model at all")
    with pytest.raises(LocalModelError, match="not a GGUF model file"):
        resolve_model(fake)
    with pytest.raises(LocalModelError, match="no such model file"):
        resolve_model(tmp_path / "missing.gguf")
    # A file that looks like GGUF but is not a model: the server exits, and says so.
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(LocalModelError, match="exited"):
        local_server(broken)


@pytest.mark.anyio
async def test_real_turns_give_valid_actions_charged_to_compute_and_budget():
    from engine.clock import VirtualClock
    from engine.config import parse_world
    from engine.world import World

    price = 0.002  # dollars per 1k tokens
    params = {"local": True, "max_sleep": 4.0, "max_tokens": 96, "temperature": 0.2, "timeout": 600.0,
              "dollars_per_1k_tokens": price, "compute_per_token": 0.002, "think_cost": 0.0}
    config = parse_world({
        "name": "local-llm-test", "seed": 3, "llm_budget": 1.0,
        "costs": {"noop": 0.0, "read": 0.0, "write": 0.0, "delete": 0.0, "invoke": 0.0, "sleep": 0.0},
        "agents": [{"brain": "llm", "prefix": "m", "count": 2, "scrip": 20, "rate": 0.0, "capacity": 1000.0,
                    "params": params}],
    }, source="test")
    world = World(config, clock=VirtualClock())

    async def enough() -> None:
        # Bounded in answers, not in time (a shared machine may be slow): 8, then stop.
        while sum(a.brain.answers for a in world.agents.values()) < 8:
            await anyio.sleep(0.2)
        world.stop()

    async with anyio.create_task_group() as tg:
        tg.start_soon(enough)
        await world.run(3600.0)
        tg.cancel_scope.cancel()
    brains = [a.brain for a in world.agents.values()]
    answers = sum(b.answers for b in brains)
    valid = sum(b.answered for b in brains)
    assert answers >= 8
    assert valid / answers >= 0.9, [b.error for b in brains]
    # Every action the agents took came from a parsed answer (failed turns are noops).
    assert sum(a.actions for a in world.agents.values()) >= valid
    # Tokens, as the server counted them, charged to the budget to the token ...
    tokens = sum(b.prompt_tokens + b.completion_tokens for b in brains)
    assert tokens > 8 * 100
    assert world.ledger.llm_spent == pytest.approx(tokens / 1000 * price)
    # ... and to compute: every action is free here, so compute spent is thought alone.
    for a in world.agents.values():
        b = a.brain
        spent = 1000.0 - world.ledger.buckets[a.id].peek(world.clock.now())
        assert spent == pytest.approx((b.prompt_tokens + b.completion_tokens) * 0.002)
    # The shared prefix (rules and vocabulary) came from the server's prompt cache.
    cached = sum(b.cached_prompt_tokens for b in brains)
    assert cached > 0.5 * sum(b.prompt_tokens for b in brains)
    assert all(b.usage()["per_answer"]["new_prompt_tokens"] < 800 for b in brains)


def test_the_cli_refuses_local_model_without_a_file_and_names_it(tmp_path):
    r = subprocess.run([sys.executable, "-m", "tui.cli", "run", "--headless", "--scenario", "llm",
                        "--local-model", str(tmp_path / "nope.gguf"), "--duration", "1"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "no such model file" in r.stderr
