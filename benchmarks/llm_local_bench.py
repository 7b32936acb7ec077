"""The `llm` scenario with a real local model, on the real clock.

    .venv/bin/python benchmarks/llm_local_bench.py [--seconds 180] [--baseline-seconds 90]

Runs the scenario as `ecology run --headless --scenario llm --local-model` does (4 LLM
agents among 18 scripted ones, the llama.cpp server serving SmolLM2-135M-Instruct on
loopback) for `--seconds` real seconds, and prints per LLM agent: turns per minute, the
share of answers that were valid actions, and prompt tokens per turn (new and cached).
The server's cold start (loading the model, evaluating the shared prefix once) is
timed apart, before the runs.

The baseline, measured in the same run: the same world with the answer unconstrained
(JSON mode without the action schema), for `--baseline-seconds`.

Where each LLM agent's wall time went is printed per run: sampled every 0.1 s (queued at
the endpoint's gate, in the request, the answer back but the turn not yet acted on,
acting, sleeping as the model chose, frozen in compute debt), with the request's time split
as the server reports it (prompt evaluation, generation, the rest of the call: template,
grammar, sampling) and what is left for HTTP. The server takes one request at a time, so
its busy share bounds the turns: turns per minute = 60 / (server seconds per turn x agents)
when it is always busy.

Targets (issue 18): >= 4 turns per LLM agent per minute with 4 LLM agents on 2 cores,
>= 95% valid, <= 800 new prompt tokens per turn. The machine is shared: the load average
before and after is printed, and the busiest other processes.
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import anyio  # noqa: E402

from engine.config import load_scenario  # noqa: E402
from engine.local_llm import local_server, stop_local_servers, with_local_model  # noqa: E402
from engine.report import build_report  # noqa: E402
from engine.world import World  # noqa: E402


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def busiest(n: int = 6) -> str:
    out = subprocess.run(["ps", "-eo", "pcpu,comm", "--sort=-pcpu"], capture_output=True, text=True).stdout
    return "; ".join(" ".join(line.split()) for line in out.splitlines()[1:n + 1])


def warm_prefix(url: str) -> float:
    """Have the server evaluate the shared prefix once (what the first turn of a run
    would), so the run measures turns, not the cold start; returns the seconds it took."""
    import openai

    from engine.brains.llm_prompt import system_message
    from engine.clock import VirtualClock

    world = World(load_scenario("llm"), clock=VirtualClock())
    access = next(iter(world.agents.values())).view.llm
    prefix = system_message(access.action_costs(), access.services())
    client = openai.OpenAI(base_url=url, api_key="not-needed", timeout=1800)
    t = time.monotonic()
    client.chat.completions.create(model="local", max_tokens=1, messages=[
        {"role": "system", "content": prefix}, {"role": "user", "content": "warm up"}])
    return time.monotonic() - t


FAILURES: list[str] = []  # why turns failed (an invalid answer, a timeout), for the printout


def _keep_failures() -> None:
    from engine.brains.llm import LLMBrain

    fail = LLMBrain._fail

    def _fail(self, view, access, error, keep_cost=False):
        FAILURES.append(f"{view.id} at {view.now:.0f}s: {error}")
        return fail(self, view, access, error, keep_cost)

    LLMBrain._fail = _fail


_keep_failures()
SAMPLE_EVERY = 0.1
STATES = ("queued", "request", "landed", "acting", "sleeping", "frozen", "other")


def state_of(agent) -> str:
    """What an LLM agent is doing now, for the time breakdown."""
    status = agent.status
    if status == "thinking":
        brain = agent.brain
        gate = getattr(brain, "_gate", None)
        if gate is not None and gate.place(agent.id) is not None:
            return "queued"
        if getattr(brain, "_asked_at", None) is not None:
            return "request"
        return "landed"  # the answer is back (or not asked yet): the engine's turn
    return status if status in ("acting", "sleeping", "frozen") else "other"


async def sample_states(world: World, llm_ids: list[str], counts: dict[str, int]) -> None:
    while True:
        for agent_id in llm_ids:
            counts[state_of(world.agents[agent_id])] += 1
        await anyio.sleep(SAMPLE_EVERY)


async def run_with_samples(world: World, seconds: float) -> dict[str, int]:
    llm_ids = [a.id for a in world.agents.values() if a.config.get("brain") == "llm"]
    counts = dict.fromkeys(STATES, 0)
    async with anyio.create_task_group() as tg:
        tg.start_soon(sample_states, world, llm_ids, counts)
        await world.run(seconds)
        tg.cancel_scope.cancel()
    return counts


def run(seconds: float, constrained: bool) -> dict:
    config = with_local_model(load_scenario("llm"), None)
    if not constrained:
        data = config.model_dump()
        for g in data["agents"]:
            if g["brain"] == "llm":
                g["params"]["answer_format"] = "json_object"
        config = type(config).model_validate(data)
    world = World(config)
    started = time.monotonic()
    counts = anyio.run(run_with_samples, world, seconds)  # real clock, speed 1: world seconds are real seconds
    elapsed = time.monotonic() - started
    report = build_report(world)
    report["_elapsed"] = elapsed
    report["_states"] = counts
    report["_timing"] = [a.brain.timing for a in world.agents.values() if a.config.get("brain") == "llm"]
    report["_failures"] = list(FAILURES)
    FAILURES.clear()
    # The brains' HTTP clients belong to the loop that just ended: collect them now, not
    # during the next run's loop (where closing them logs "Event loop is closed").
    del world
    gc.collect()
    return report


def breakdown(report: dict, answers: int) -> None:
    """Where the LLM agents' wall time went, per answered turn, and the server's share."""
    counts = report["_states"]
    samples = max(1, sum(counts.values()))
    n_agents = len(report["_timing"])
    agent_seconds = report["_elapsed"] * n_agents
    per = max(1, answers)
    print(f"where each LLM agent's time went (sampled every {SAMPLE_EVERY:g} s; seconds per answered turn, "
          f"{answers} turns):")
    print("  " + ", ".join(f"{k} {counts[k] / samples:.0%} ({counts[k] / samples * agent_seconds / per:.1f} s)"
                           for k in STATES))
    tm = {k: sum(t[k] for t in report["_timing"]) for k in report["_timing"][0]}
    timed = max(1, tm["requests_timed"])
    other = tm["server_total_s"] - tm["prompt_eval_s"] - tm["generate_s"]
    print(f"  queued at the gate {tm['queued_s'] / per:.2f} s; in the request {tm['request_s'] / per:.2f} s, of which "
          f"the server: prompt eval {tm['prompt_eval_s'] / timed:.2f} s ({tm['prompt_eval_tokens'] / timed:.0f} tokens, "
          f"{tm['prompt_eval_tokens'] / max(1e-9, tm['prompt_eval_s']):.0f}/s), generation {tm['generate_s'] / timed:.2f} s "
          f"({tm['generated_tokens'] / timed:.0f} tokens, {tm['generated_tokens'] / max(1e-9, tm['generate_s']):.0f}/s), "
          f"rest of the call {other / timed:.2f} s; HTTP and client {(tm['request_s'] - tm['server_total_s']) / timed:.2f} s")
    print(f"  the server was busy {tm['server_total_s'] / report['_elapsed']:.0%} of the run "
          f"({tm['server_total_s'] / timed:.2f} s a request, {tm['requests_timed']} requests)")


def summarize(label: str, report: dict) -> dict:
    minutes = report["_elapsed"] / 60
    rows = []
    for a in report["agents"]:
        u = a.get("llm")
        if u is None:
            continue
        rows.append((a["id"], u))
    print(f"\n{label}: {report['_elapsed']:.0f} s real, {len(rows)} LLM agents, "
          f"{report['totals']['actions']:,} actions in all")
    print(f"{'agent':8} {'turns/min':>9} {'answers':>7} {'valid':>6} {'prompt/turn':>11} {'new':>6} {'cached':>6} "
          f"{'compl/turn':>10} {'dollars':>9}")
    for agent_id, u in rows:
        per = u["per_answer"]
        valid = u["valid_answers"] / u["answers"] if u["answers"] else 0.0
        print(f"{agent_id:8} {u['answers'] / minutes:9.2f} {u['answers']:7d} {valid:6.0%} {per['prompt_tokens']:11.0f} "
              f"{per['new_prompt_tokens']:6.0f} {per['prompt_tokens'] - per['new_prompt_tokens']:6.0f} "
              f"{per['completion_tokens']:10.0f} {u['dollars']:9.5f}")
    t = report["llm"]
    breakdown(report, t["answers"])
    for f in report["_failures"][:5]:
        print(f"  failed turn: {f[:300]}")
    n = max(1, t["answers"])
    out = {
        "turns_per_agent_min": t["answers"] / len(rows) / minutes,
        "valid": t["valid_answers"] / n,
        "new_prompt": t["per_answer"]["new_prompt_tokens"],
        "cached_prompt": t["per_answer"]["prompt_tokens"] - t["per_answer"]["new_prompt_tokens"],
        "failed": t["failed_turns"],
    }
    print(f"all LLM agents: {out['turns_per_agent_min']:.2f} turns/agent/min, {out['valid']:.1%} valid, "
          f"{out['new_prompt']:.0f} new + {out['cached_prompt']:.0f} cached prompt tokens per turn, "
          f"{t['failed_turns']} failed turns, ${t['dollars']:.4f} of ${t['budget']:g}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=180.0)
    ap.add_argument("--baseline-seconds", type=float, default=90.0)
    args = ap.parse_args()
    print(f"load average before: {load()}  ({os.cpu_count()} CPUs)")
    print(f"busiest processes: {busiest()}")
    t0 = time.monotonic()
    server = local_server()  # started here so its start-up is timed apart
    o = server.options
    print(f"server {server.describe()} up in {time.monotonic() - t0:.1f} s (threads: {o.n_threads} generating, "
          f"{o.n_threads_batch} evaluating prompts; n_ctx {o.n_ctx})")
    print(f"cold start: the shared prefix evaluated once in {warm_prefix(server.url):.1f} s (outside the runs)")
    try:
        main_run = summarize("schema-constrained (the default)", run(args.seconds, True))
        base = None
        if args.baseline_seconds > 0:
            base = summarize("baseline: JSON mode without the schema", run(args.baseline_seconds, False))
    finally:
        stop_local_servers()
    print(f"\nload average after: {load()}")
    print(f"busiest processes: {busiest()}")
    m = main_run
    print(f"\ntargets: turns/agent/min {m['turns_per_agent_min']:.2f} (>= 4), valid {m['valid']:.1%} (>= 95%), "
          f"new prompt tokens/turn {m['new_prompt']:.0f} (<= 800)")
    if base is not None:
        ratio = m["turns_per_agent_min"] / base["turns_per_agent_min"] if base["turns_per_agent_min"] else float("inf")
        print(f"against the baseline: turns/min x{ratio:.2f}, valid {m['valid']:.1%} vs {base['valid']:.1%}")


if __name__ == "__main__":
    main()
