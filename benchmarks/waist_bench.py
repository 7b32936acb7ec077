"""What the waist's wall costs: one genesis call through `Waist.perform`, against the same
method's handler called directly, in the same run (and, with --against, against another
checkout of the engine, e.g. main before issue 12, run in the same session, alternating).

    .venv/bin/python benchmarks/waist_bench.py [--repeat 7] [--against /path/to/other/checkout]
    .venv/bin/python benchmarks/waist_bench.py --instructions [--against ...]

With --instructions each call is counted in machine instructions under valgrind's
callgrind (a run with the calls, less a run without them): slow, but the same on a busy
machine as on a quiet one, where timings here vary by 2x from run to run.

Calls measured: `ledger.transfer` (the busiest, one whole-number bound, the undo log and
the held event), `contracts.offer` + `cancel` (exact interest, four bounds), and
`contracts.owed` on an active loan (exact interest from the floats' own ratios). Each
figure is the minimum over repeats of the mean over many calls, in µs. Machines here are
shared and noisy: read the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

MEASURE = textwrap.dedent(
    r"""
    import json, sys, timeit
    from engine.actions import Invoke
    from engine.clock import VirtualClock
    from engine.config import parse_world
    from engine.world import World

    repeat = int(sys.argv[1])
    cfg = parse_world({"name": "b", "costs": {"invoke": 0.0}, "metrics": {"interval": 1e9},
                       "contracts": {"max_rate_per_day": 5.0},
                       "agents": [{"brain": "boltzmann", "count": 2, "scrip": 10**9, "rate": 1.0,
                                   "capacity": 10.0}]})
    w = World(cfg, clock=VirtualClock())
    perform = w.waist.perform
    out = {}

    def best(fn, n):
        return min(timeit.repeat(fn, number=n, repeat=repeat)) / n * 1e6

    there = Invoke("ledger", "transfer", {"to": "a002", "amount": 1})
    back = Invoke("ledger", "transfer", {"to": "a001", "amount": 1})
    out["transfer via the waist"] = best(lambda: (perform("a001", there, 0.0), perform("a002", back, 0.0)), 20000) / 2
    h = w.waist.genesis["ledger"].methods["transfer"].handler
    a, b = {"to": "a002", "amount": 1}, {"to": "a001", "amount": 1}
    out["transfer, handler alone"] = best(lambda: (h("a001", a, 0.0), h("a002", b, 0.0)), 20000) / 2

    offer = Invoke("contracts", "offer", {"debtor": "a002", "principal": 1000, "rate_per_day": 0.57,
                                          "due_in": 93600.0})
    ids = iter(range(1, 10**9))
    def offer_cancel():
        r = perform("a001", offer, 0.0)
        perform("a001", Invoke("contracts", "cancel", {"contract": r.value["contract"]}), 0.0)
    out["offer + cancel via the waist"] = best(offer_cancel, 2000)

    r = perform("a001", offer, 0.0)
    perform("a002", Invoke("contracts", "accept", {"contract": r.value["contract"]}), 0.0)
    c = w.contracts.contracts[r.value["contract"]].content
    out["owed on an active loan"] = best(lambda: w.contracts.owed(c, 1234.5678), 20000)
    print(json.dumps(out))
    """
)


COUNT = textwrap.dedent(
    r"""
    import sys
    from engine.actions import Invoke
    from engine.clock import VirtualClock
    from engine.config import parse_world
    from engine.world import World

    kind, n = sys.argv[1], int(sys.argv[2])
    cfg = parse_world({"name": "b", "costs": {"invoke": 0.0}, "metrics": {"interval": 1e9},
                       "contracts": {"max_rate_per_day": 5.0},
                       "agents": [{"brain": "boltzmann", "count": 2, "scrip": 10**9, "rate": 1.0,
                                   "capacity": 10.0}]})
    w = World(cfg, clock=VirtualClock())
    perform = w.waist.perform
    offer = Invoke("contracts", "offer", {"debtor": "a002", "principal": 1000, "rate_per_day": 0.57,
                                          "due_in": 93600.0})
    r = perform("a001", offer, 0.0)
    perform("a002", Invoke("contracts", "accept", {"contract": r.value["contract"]}), 0.0)
    c = w.contracts.contracts[r.value["contract"]].content
    there = Invoke("ledger", "transfer", {"to": "a002", "amount": 1})
    h = w.waist.genesis["ledger"].methods["transfer"].handler
    a = {"to": "a002", "amount": 1}
    owed = w.contracts.owed
    if kind == "transfer via the waist":
        for _ in range(n):
            perform("a001", there, 0.0)
    elif kind == "transfer, handler alone":
        for _ in range(n):
            h("a001", a, 0.0)
    elif kind == "offer + cancel via the waist":
        for _ in range(n):
            r = perform("a001", offer, 0.0)
            perform("a001", Invoke("contracts", "cancel", {"contract": r.value["contract"]}), 0.0)
    elif kind == "owed on an active loan":
        for _ in range(n):
            owed(c, 1234.5678)
    """
)
KINDS = ("transfer via the waist", "transfer, handler alone", "offer + cancel via the waist", "owed on an active loan")


def instructions(src: Path, kind: str, n: int) -> int:
    env = {**os.environ, "PYTHONPATH": str(src)}
    r = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-c", COUNT,
                        kind, str(n)], cwd=src, env=env, capture_output=True, text=True, check=True)
    return int(r.stderr.split("Collected :")[1].split()[0])


def count(src: Path) -> dict[str, float]:
    """Instructions per call, in thousands."""
    n = 5000
    return {k: (instructions(src, k, n) - instructions(src, k, 0)) / n / 1000 for k in KINDS}


def measure(src: Path, repeat: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    r = subprocess.run([sys.executable, "-c", MEASURE, str(repeat)], cwd=src, env=env, capture_output=True,
                       text=True, check=True)
    return json.loads(r.stdout)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds when comparing checkouts")
    p.add_argument("--against", type=Path, help="another checkout of the project to measure in the same run")
    p.add_argument("--instructions", action="store_true", help="count instructions under valgrind, not time")
    args = p.parse_args()
    trees = [("this", ROOT)] + ([("other", args.against.resolve())] if args.against else [])
    results: dict[str, dict[str, float]] = {name: {} for name, _ in trees}
    unit = "µs"
    if args.instructions:
        unit = "k instr"
        for name, src in trees:
            results[name] = count(src)
    else:
        for _ in range(args.rounds if args.against else 1):
            for name, src in trees:
                for k, v in measure(src, args.repeat).items():
                    results[name][k] = min(v, results[name].get(k, float("inf")))
    this = results["this"]
    print(f"{'call':34s} {'this ' + unit:>11s}" + (f" {'other ' + unit:>12s} {'this/other':>10s}" if args.against else ""))
    for k, v in this.items():
        line = f"{k:34s} {v:11.2f}"
        if args.against:
            o = results["other"].get(k)
            line += f" {o:12.2f} {v / o:10.2f}" if o else f" {'-':>12s} {'-':>10s}"
        print(line)
    print(f"waist / handler alone for a transfer: {this['transfer via the waist'] / this['transfer, handler alone']:.2f}")
    if args.against and "transfer via the waist" in results["other"]:
        o = results["other"]
        print(f"  (other: {o['transfer via the waist'] / o['transfer, handler alone']:.2f})")


if __name__ == "__main__":
    main()
