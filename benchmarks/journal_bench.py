"""The journal's cost: its own throughput, and the engine's actions/s with journaling on vs
off, measured in the same run.

    .venv/bin/python benchmarks/journal_bench.py [--seconds 10]

Workloads: the Boltzmann world of benchmarks/boltzmann_bench.py with 1,000 agents, with one
scrip each (Mesa's model: few transfers, few events) and with 100 each (every action a
transfer and an event: the journal's worst case), committing every 100 ms.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))
from boltzmann_bench import engine_config  # noqa: E402

from engine import heap  # noqa: E402
from engine.world import World  # noqa: E402


def run(n: int, scrip: int, seconds: float, journal: bool) -> dict:
    if scrip == 0:  # the default world scaled to n agents, real clock at 10x: agents pay as they go
        from engine.config import load_scenario

        cfg = load_scenario("default").with_agents(n)
        world = World(cfg.model_copy(update={"clock": cfg.clock.model_copy(update={"speed": 10.0})}))
    else:
        world = World(engine_config(n, scrip=scrip))
    tmp = tempfile.TemporaryDirectory()
    if journal:
        world.attach_journal(Path(tmp.name) / "bench.db", commit_interval=0.1)
    heap.settle()  # as the `ecology` command does once its world is built

    async def main():
        async with anyio.create_task_group() as tg:
            tg.start_soon(world.run)
            await anyio.sleep(0.3)
            a0, e0, t0, w0 = world.total_actions, world.bus.seq, time.perf_counter(), time.time()
            await anyio.sleep(seconds)
            a1, e1, t1, w1 = world.total_actions, world.bus.seq, time.perf_counter(), time.time()
            tg.cancel_scope.cancel()
        return (a1 - a0) / (t1 - t0), (e1 - e0) / (t1 - t0), (w0, w1)

    actions, events, window = anyio.run(main)
    out = {"actions_per_s": actions, "events_per_s": events}
    if journal:
        j = world.journal
        # The commits made while the workload ran (not the last one, made as the world stops).
        walls = [w for (w,) in j.db.execute("SELECT wall FROM commits WHERE wall BETWEEN ? AND ? ORDER BY n", window)]
        gaps = sorted(b - a for a, b in zip(walls, walls[1:])) or [0.0]
        out.update(commits=len(walls), written=j.events_written, size_mb=j.path.stat().st_size / 2**20,
                   gap_p50=gaps[len(gaps) // 2], gap_p99=gaps[min(len(gaps) - 1, int(0.99 * len(gaps)))],
                   gap_max=gaps[-1], over=sum(g > 0.1 for g in gaps) / len(gaps))
        j.close()
    tmp.cleanup()
    return out


def raw_throughput(events: int = 200_000) -> float:
    """Events/s the journal commits on its own: encode and write batches of transfer events."""
    from engine.events import ScripTransferred

    world = World(engine_config(10))
    with tempfile.TemporaryDirectory() as tmp:
        journal = world.attach_journal(Path(tmp) / "raw.db")
        batch = 10_000

        async def main():
            t0 = time.perf_counter()
            for i in range(events // batch):
                for k in range(batch):
                    world.bus.publish(ScripTransferred(float(i), "a001", "a002", 1))
                await journal.flush()
            return events / (time.perf_counter() - t0)

        rate = anyio.run(main)
        journal.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    print(f"journal alone: {raw_throughput():,.0f} events/s committed (publish + encode + write, batches of 10,000)")
    print(f"{'workload':<32} {'off: actions/s':>15} {'on: actions/s':>14} {'on/off':>7} {'events/s':>10} "
          f"{'commits':>8} {'gap p50/p99/max ms':>19} {'>100ms':>7} {'MB':>6}")
    for label, scrip in (("1 scrip each (Mesa's model)", 1), ("100 scrip each (all transfers)", 100),
                         ("default world, real clock x10", 0)):
        off = run(1000, scrip, args.seconds, journal=False)
        on = run(1000, scrip, args.seconds, journal=True)
        print(f"{label:<32} {off['actions_per_s']:>15,.0f} {on['actions_per_s']:>14,.0f} "
              f"{on['actions_per_s'] / off['actions_per_s']:>7.2f} {on['events_per_s']:>10,.0f} "
              f"{on['commits']:>8} {1000 * on['gap_p50']:>7.0f}/{1000 * on['gap_p99']:.0f}/{1000 * on['gap_max']:<7.0f} "
              f"{100 * on['over']:>6.1f}% {on['size_mb']:>6.1f}")


if __name__ == "__main__":
    main()
