"""Virtual time: the Boltzmann scenario through the whole engine, beside SimPy in the same run.

    .venv/bin/python benchmarks/virtual_bench.py [--agents 1000 10000] [--duration 600] [--runs 3]

Engine: the real `World` on a virtual clock (scheduler, agent turns, bucket, narrow waist,
ledger, events, metrics windows, oracle timer), the built-in `boltzmann` scenario scaled to
N agents. Every agent pays 0.5 to think plus 0.5 for a transfer (0.1 for a noop when it has
no scrip) from a bucket of rate 1/s and capacity 5, so after its first few turns every action
puts it in debt: each action is a freeze and a timed thaw.

SimPy: the same model as a SimPy 4 process per agent (a `timeout` of exactly -balance/rate
per freeze), in the peers' virtualenv (benchmarks/peers.py). Mesa 3's discrete-event
simulator is not run: SimPy is the faster peer for this workload.

Each side runs `--runs` times, alternating; the best wall time of each is compared (the
machine is shared: the best run is the least disturbed). CPU seconds are the process's own.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from peers import run_peer  # noqa: E402

SIMPY_SCRIPT = textwrap.dedent(
    """
    import json, random, sys, time, simpy
    n, duration = int(sys.argv[1]), float(sys.argv[2])
    RATE, CAP = 1.0, 5.0
    rng = random.Random(1)
    wealth = [1] * n
    count = [0]

    def agent(env, i):
        balance, last = CAP, 0.0
        rnd = rng.random
        timeout = env.timeout
        while True:
            now = env.now
            if now > last:
                balance = min(CAP, balance + (now - last) * RATE)
                last = now
            if wealth[i] > 0:
                j = int(rnd() * (n - 1))
                j += j >= i  # a uniformly random other agent
                wealth[i] -= 1
                wealth[j] += 1
                balance -= 1.0  # think 0.5 + transfer 0.5
            else:
                balance -= 0.6  # think 0.5 + noop 0.1
            count[0] += 1
            if balance < 0:
                yield timeout(-balance / RATE)

    env = simpy.Environment()
    for i in range(n):
        env.process(agent(env, i))
    t0, c0 = time.perf_counter(), time.process_time()
    env.run(until=duration)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({"actions": count[0], "wall": wall, "cpu": cpu, "simpy": simpy.__version__}))
    """
)


def engine_run(n: int, duration: float) -> dict:
    from engine.clock import VirtualClock
    from engine.config import load_scenario
    from engine.metrics import gini
    from engine.world import World

    world = World(load_scenario("boltzmann").with_agents(n), clock=VirtualClock())
    t0, c0 = time.perf_counter(), time.process_time()
    anyio.run(world.run, duration)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    ok = all(world.invariants().values())
    g = gini(world.ledger.scrip[a] for a in world.agents)
    return {"actions": world.total_actions, "wall": wall, "cpu": cpu, "invariants": ok, "gini": g}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument("--duration", type=float, default=600.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-simpy", action="store_true")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, load {load:.1f}; "
          f"boltzmann scenario, virtual time, {args.duration:g} s, best of {args.runs}")
    print(f"{'N':>7} {'engine act/s':>13} {'wall':>7} {'cpu':>7} {'actions':>10} {'gini':>6} "
          f"{'simpy act/s':>12} {'wall':>7} {'actions':>10} {'eng/simpy':>10}")
    for n in args.agents:
        eng, peer = [], []
        for _ in range(args.runs):
            eng.append(engine_run(n, args.duration))
            if not args.no_simpy:
                p = run_peer(SIMPY_SCRIPT, n, args.duration)
                if p is not None:
                    peer.append(p)
        e = min(eng, key=lambda r: r["wall"])
        assert all(r["invariants"] for r in eng), "an invariant broke"
        e_rate = e["actions"] / e["wall"]
        line = (f"{n:>7,} {e_rate:>13,.0f} {e['wall']:>6.2f}s {e['cpu']:>6.2f}s {e['actions']:>10,} "
                f"{e['gini']:>6.3f}")
        if peer:
            p = min(peer, key=lambda r: r["wall"])
            p_rate = p["actions"] / p["wall"]
            line += f" {p_rate:>12,.0f} {p['wall']:>6.2f}s {p['actions']:>10,} {e_rate / p_rate:>9.2f}x"
        print(line, flush=True)


if __name__ == "__main__":
    main()
