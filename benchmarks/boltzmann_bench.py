"""Boltzmann workload through the full engine path, against two baselines in the same run.

    .venv/bin/python benchmarks/boltzmann_bench.py [--seconds 3] [--no-mesa]

Engine: the real World (agent loop, bucket charge, narrow waist, ledger move, event) with
compute ample enough that no agent freezes, so it measures the engine's own cost per action.
Baseline (a): a bare anyio task per agent doing the same dict transfer, one checkpoint per
iteration (the naive way to write an agent loop). Baseline (b): Mesa's Boltzmann wealth
model with the agent list cached, in the peers' virtualenv (benchmarks/peers.py: created on
first use from PyPI; Mesa is not a project dependency). Also: RSS of 10,000 live agents.
Machines here are shared and noisy: read the ratios, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import anyio

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from peers import run_peer  # noqa: E402



def engine_config(n: int, seed: int = 1, scrip: int = 1):
    from engine.config import parse_world

    return parse_world(
        {
            "name": "bench",
            "seed": seed,
            "operator": {"scrip": 0},
            "metrics": {"interval": 1e9},
            "costs": {"noop": 0.1, "ledger.transfer": 0.5},
            "agents": [
                {
                    "brain": "boltzmann",
                    "count": n,
                    "scrip": scrip,
                    "rate": 1e6,
                    "capacity": 1e12,  # ample compute: nobody freezes, nothing waits
                    "params": {"think_cost": 0.5},
                }
            ],
        }
    )


def bench_engine(n: int, seconds: float, scrip: int = 1) -> dict:
    from engine.world import World

    world = World(engine_config(n, scrip=scrip))

    async def main() -> float:
        async with anyio.create_task_group() as tg:
            tg.start_soon(world.run)
            await anyio.sleep(0.2)  # warm-up: tasks started, caches filled
            a0, t0 = world.total_actions, time.perf_counter()
            await anyio.sleep(seconds)
            a1, t1 = world.total_actions, time.perf_counter()
            tg.cancel_scope.cancel()
        assert all(world.invariants().values()), world.invariants()
        return (a1 - a0) / (t1 - t0)

    rate = anyio.run(main)
    transfers = world.bus.counts.get("scrip_transferred", 0)
    return {"actions_per_s": rate, "transfer_share": transfers / max(1, world.total_actions)}


def bench_bare_anyio(n: int, seconds: float) -> dict:
    """One task per agent, a dict transfer and a checkpoint per iteration."""
    wealth = {i: 1 for i in range(n)}
    ids = list(range(n))
    count = [0]
    rng = random.Random(1)

    async def agent(i: int) -> None:
        checkpoint = anyio.lowlevel.checkpoint
        while True:
            if wealth[i] > 0:
                other = ids[int(rng.random() * n)]
                wealth[i] -= 1
                wealth[other] += 1
            count[0] += 1
            await checkpoint()

    async def main() -> float:
        async with anyio.create_task_group() as tg:
            for i in ids:
                tg.start_soon(agent, i)
            await anyio.sleep(0.2)
            c0, t0 = count[0], time.perf_counter()
            await anyio.sleep(seconds)
            c1, t1 = count[0], time.perf_counter()
            tg.cancel_scope.cancel()
        return (c1 - c0) / (t1 - t0)

    return {"actions_per_s": anyio.run(main)}


MESA_SCRIPT = textwrap.dedent(
    """
    import json, sys, time, mesa
    TRANSFERS = [0]
    class MoneyAgent(mesa.Agent):
        def __init__(self, model, wealth):
            super().__init__(model)
            self.wealth = wealth
        def step(self):
            if self.wealth > 0:
                other = self.random.choice(self.model.agent_list)
                other.wealth += 1
                self.wealth -= 1
                TRANSFERS[0] += 1
    class MoneyModel(mesa.Model):
        def __init__(self, n, wealth):
            super().__init__(seed=1)
            MoneyAgent.create_agents(self, n, wealth)
            self.agent_list = list(self.agents)  # cached, as the benchmark asks
        def step(self):
            self.agents.shuffle_do("step")
    n, seconds, wealth = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
    m = MoneyModel(n, wealth)
    m.step()
    steps, t0, TRANSFERS[0] = 0, time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        m.step(); steps += 1
    dt = time.perf_counter() - t0
    print(json.dumps({"actions_per_s": n * steps / dt, "transfer_share": TRANSFERS[0] / (n * steps),
                      "mesa": mesa.__version__}))
    """
)


def bench_mesa(n: int, seconds: float, wealth: int = 1) -> dict | None:
    return run_peer(MESA_SCRIPT, n, seconds, wealth)


RSS_SCRIPT = textwrap.dedent(
    """
    import sys, anyio, time
    sys.path.insert(0, sys.argv[2])
    from boltzmann_bench import engine_config
    from engine.world import World
    def rss():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    base = rss()
    n = int(sys.argv[1])
    world = World(engine_config(n))
    async def main():
        async with anyio.create_task_group() as tg:
            tg.start_soon(world.run)
            await anyio.sleep(1.5)
            tg.cancel_scope.cancel()
    peak = [0]
    anyio.run(main)
    print(base, rss(), world.total_actions)
    """
)


def bench_rss(n: int) -> dict:
    r = subprocess.run(
        [sys.executable, "-c", RSS_SCRIPT, str(n), str(HERE)], capture_output=True, text=True, check=True
    )
    base, after, actions = (int(x) for x in r.stdout.split())
    return {"rss_mb": after / 2**20, "interpreter_mb": base / 2**20, "actions": actions}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--no-mesa", action="store_true")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, {args.seconds:g} s per measurement")
    nan = {"actions_per_s": float("nan"), "transfer_share": float("nan")}
    # Workload 1 is Mesa's model as published (one scrip each; broke agents do nothing).
    # Workload 2 gives everyone 100 so nearly every action is a transfer: the whole path
    # (bucket charge, ledger move, event) every time, the engine's worst case.
    for label, scrip in (("1 scrip each (Mesa's model)", 1), ("100 scrip each (all transfers)", 100)):
        print(f"\n{label}")
        print(f"{'N':>7} {'engine/s':>11} {'xfer%':>6} {'bare anyio/s':>13} {'mesa/s':>11} {'xfer%':>6} {'eng/mesa':>9} {'eng/anyio':>10}")
        for n in (1_000, 10_000):
            eng = bench_engine(n, args.seconds, scrip)
            bare = bench_bare_anyio(n, args.seconds)["actions_per_s"]
            mesa = (None if args.no_mesa else bench_mesa(n, args.seconds, scrip)) or nan
            e, m = eng["actions_per_s"], mesa["actions_per_s"]
            print(
                f"{n:>7,} {e:>11,.0f} {100 * eng['transfer_share']:>5.0f}% {bare:>13,.0f} {m:>11,.0f} "
                f"{100 * mesa['transfer_share']:>5.0f}% {e / m:>9.2f} {e / bare:>10.2f}"
            )
    rss = bench_rss(10_000)
    print(
        f"10,000 live agents: RSS {rss['rss_mb']:.0f} MB (interpreter and imports {rss['interpreter_mb']:.0f} MB), "
        f"{rss['actions']:,} actions in 1.5 s"
    )


if __name__ == "__main__":
    main()
