"""Checkpoints: what they cost a recorded world, how big they make its journal, and how
fast a replay seeks in it. All figures measured in the same run.

    .venv/bin/python benchmarks/replay_bench.py [--agents 500] [--hour 3600] [--seeks 40]
    farm-bench -n 3 --warmup 0 --timeout 900 \
        --vs ".venv/bin/python benchmarks/replay_bench.py --record-only 0" -- \
        .venv/bin/python benchmarks/replay_bench.py --record-only 10      # the cost, paired

1. The default world scaled to N agents, seeded, on virtual time, recorded for one world
   hour twice: checkpoints every 10 world seconds (the default) and none between the
   run's start and end (`--checkpoint-every 0`). Reported: wall seconds, actions/s (the
   ratio is what checkpointing costs on virtual time, where ten world seconds pass in a
   fraction of a wall second), the time spent inside checkpoints, and the journal's
   bytes per world hour (main file and WAL, after the run). Then the same world on a
   real clock at 10x (as benchmarks/journal_bench.py runs it): actions/s with and
   without checkpoints, alternated, median of three windows.
   The two virtual-time recordings run one after the other, and this machine's speed
   drifts by tens of percent within minutes; so the cost is also measured paired: two
   copies of the world recorded side by side in one process, stepped in turns of 10
   world seconds (which goes first alternates), one without checkpoints between start
   and end and one with them, each step timed; the ratio of their summed times.
2. Seeking: the recording opened for replay; the world at random moments of the hour,
   each built from scratch (the latest checkpoint, run on to the moment): median, p90 and
   the worst, against the 200 ms the issue asks (50 ms the moonshot). Then the same
   moments visited in time order (a replay playing or stepping forward), where a world is
   run on rather than rebuilt. After each seek, the world it left behind is collected (as
   the app does once the new moment is on screen), timed apart and reported.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.config import load_scenario  # noqa: E402
from engine.replay import Recording  # noqa: E402
from engine.world import World  # noqa: E402


def config(agents: int):
    cfg = load_scenario("default").with_agents(agents)
    return cfg.model_copy(update={"seed": 3, "clock": cfg.clock.model_copy(update={"virtual": True})})


def record(path: Path, agents: int, hour: float, every: float) -> dict:
    world = World(config(agents))
    world.attach_journal(path, checkpoint_every=every)
    started = time.perf_counter()
    anyio.run(lambda: world.run(hour))
    wall = time.perf_counter() - started
    j = world.journal
    j.close()
    size = sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists())
    return {"wall": wall, "actions": world.total_actions, "actions_per_s": world.total_actions / wall,
            "checkpoints": j.checkpoints, "in_checkpoints": j.checkpoint_seconds, "bytes": size}


def paired(agents: int, hour: float) -> dict:
    """The cost of checkpoints, measured in turns (see the module doc)."""
    with tempfile.TemporaryDirectory() as tmp:
        plain, with_cp = World(config(agents)), World(config(agents))
        plain.attach_journal(Path(tmp) / "plain.db", checkpoint_every=0.0)
        with_cp.attach_journal(Path(tmp) / "cp.db", checkpoint_every=10.0)
        plain.journal.checkpoint = lambda now, reason: None  # (nor where each step ends)
        wall = {id(plain): 0.0, id(with_cp): 0.0}
        t, turn = 0.0, 0
        while t < hour:
            t, turn = min(hour, t + 10.0), turn + 1
            for world in (plain, with_cp) if turn % 2 else (with_cp, plain):
                started = time.perf_counter()
                anyio.run(lambda: world.run(until=t, final_window=False))
                wall[id(world)] += time.perf_counter() - started
        assert plain.total_actions == with_cp.total_actions, "checkpoints changed the world"
        for world in (plain, with_cp):
            world.journal.close()
    return {"plain": wall[id(plain)], "with": wall[id(with_cp)], "checkpoints": with_cp.journal.checkpoints,
            "in_checkpoints": with_cp.journal.checkpoint_seconds}


def realtime(agents: int, seconds: float, every: float, speed: float = 10.0) -> float:
    """Actions/s of the world recorded on a real clock at `speed` (as journal_bench runs it),
    over `seconds` of wall time after a warm-up."""
    cfg = load_scenario("default").with_agents(agents)
    world = World(cfg.model_copy(update={"seed": 3, "clock": cfg.clock.model_copy(update={"speed": speed})}))
    with tempfile.TemporaryDirectory() as tmp:
        world.attach_journal(Path(tmp) / "rt.db", checkpoint_every=every)

        async def main() -> float:
            async with anyio.create_task_group() as tg:
                tg.start_soon(world.run)
                await anyio.sleep(0.5)
                a0, t0 = world.total_actions, time.perf_counter()
                await anyio.sleep(seconds)
                a1, t1 = world.total_actions, time.perf_counter()
                tg.cancel_scope.cancel()
            return (a1 - a0) / (t1 - t0)

        rate = anyio.run(main)
        world.journal.close()
    return rate


def seek(path: Path, hour: float, n: int) -> dict:
    rec = Recording(path)
    rng = random.Random(1)
    moments = [rng.uniform(0, hour) for _ in range(n)]

    collections: list[float] = []

    def collect() -> None:
        # What the app does once a moment is on screen: collect the world left behind
        # (a seek builds with the collector paused). Timed apart from the seek.
        started = time.perf_counter()
        gc.collect()
        collections.append(time.perf_counter() - started)

    async def cold() -> list[float]:
        times = []
        for t in moments:
            rec._world = None  # from scratch: no world to run on
            started = time.perf_counter()
            await rec.moment(t)
            times.append(time.perf_counter() - started)
            collect()
        return times

    async def forward() -> list[float]:
        times = []
        for t in sorted(moments):
            started = time.perf_counter()
            await rec.moment(t)
            times.append(time.perf_counter() - started)
            collect()
        return times

    cold_times = anyio.run(cold)
    rec._world = None
    forward_times = anyio.run(forward)

    def stats(xs: list[float]) -> dict:
        xs = sorted(xs)
        return {"p50": statistics.median(xs), "p90": xs[int(0.9 * (len(xs) - 1))], "max": xs[-1]}

    return {"cold": stats(cold_times), "forward": stats(forward_times), "checkpoints": len(rec.checkpoints),
            "collect": statistics.mean(collections)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--agents", type=int, default=500)
    ap.add_argument("--hour", type=float, default=3600.0, help="world seconds recorded")
    ap.add_argument("--seeks", type=int, default=40)
    ap.add_argument("--realtime", type=float, default=10.0, help="wall seconds of each real-clock window")
    ap.add_argument("--record-only", type=float, metavar="EVERY", default=None,
                    help="only record the hour with a checkpoint every EVERY world seconds (0: none) and "
                         "print its figures: one process per recording, for pairing with farm-bench")
    args = ap.parse_args()
    if args.record_only is not None:
        with tempfile.TemporaryDirectory() as tmp:
            r = record(Path(tmp) / "r.db", args.agents, args.hour, args.record_only)
        print(f"checkpoint every {args.record_only:g} world s: {r['wall']:.1f} s wall, {r['actions']:,} actions, "
              f"{r['actions_per_s']:,.0f} actions/s, {r['checkpoints']} checkpoints ({r['in_checkpoints']:.2f} s in them)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        plain = record(Path(tmp) / "plain.db", args.agents, args.hour, 0.0)
        with_cp = record(Path(tmp) / "cp.db", args.agents, args.hour, 10.0)
        per_hour = 3600.0 / args.hour
        print(f"default world, {args.agents} agents, {args.hour:g} world s on virtual time, seed 3")
        for name, r in (("no checkpoints between start and end", plain), ("a checkpoint every 10 world s", with_cp)):
            print(f"  {name:38} {r['wall']:7.1f} s wall  {r['actions']:>9,} actions  {r['actions_per_s']:>9,.0f} "
                  f"actions/s  {r['checkpoints']:>4} checkpoints ({r['in_checkpoints']:.2f} s in them)  "
                  f"{r['bytes'] * per_hour / 2**20:8.1f} MB per world hour")
        assert plain["actions"] == with_cp["actions"], "checkpoints changed the world"
        print(f"  checkpointing: actions/s x{with_cp['actions_per_s'] / plain['actions_per_s']:.3f} "
              f"(time inside checkpoints: {100 * with_cp['in_checkpoints'] / with_cp['wall']:.1f}% of the run); "
              f"{with_cp['bytes'] / with_cp['checkpoints'] / 1024:.0f} KB a checkpoint")
        p = paired(args.agents, args.hour)
        print(f"  paired, in turns of 10 world s: {p['plain']:.1f} s without, {p['with']:.1f} s with "
              f"{p['checkpoints']} checkpoints ({p['in_checkpoints']:.2f} s in them, "
              f"{1000 * p['in_checkpoints'] / p['checkpoints']:.1f} ms each): actions/s x{p['plain'] / p['with']:.3f}")
        rt = {every: [] for every in (0.0, 10.0)}
        for _ in range(3):  # alternated, so a change in the machine's load hits both alike
            for every in rt:
                rt[every].append(realtime(args.agents, args.realtime, every))
        off, on = statistics.median(rt[0.0]), statistics.median(rt[10.0])
        print(f"  real clock at 10x, {args.realtime:g} s windows, median of 3: {off:,.0f} actions/s without "
              f"checkpoints, {on:,.0f} with one every 10 world s (x{on / off:.3f})")
        s = seek(Path(tmp) / "cp.db", args.hour, args.seeks)
        c, f = s["cold"], s["forward"]
        print(f"seek in the recording ({s['checkpoints']} checkpoints), {args.seeks} random moments:")
        print(f"  from scratch:    p50 {1000 * c['p50']:6.1f} ms  p90 {1000 * c['p90']:6.1f} ms  "
              f"max {1000 * c['max']:6.1f} ms  (target < 200 ms, moonshot 50 ms)")
        print(f"  in time order:   p50 {1000 * f['p50']:6.1f} ms  p90 {1000 * f['p90']:6.1f} ms  "
              f"max {1000 * f['max']:6.1f} ms")
        print(f"  the world a seek left behind, collected once the new one is shown (as the app does): "
              f"{1000 * s['collect']:.1f} ms on average, apart from the seek")


if __name__ == "__main__":
    main()
