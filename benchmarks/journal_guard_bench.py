"""What the journal's guard costs (issue 13): the writer's mark after every commit, against
the commit itself, and the read-only check a resume or an export makes first, against
reading the state; each pair measured in the same run.

    .venv/bin/python benchmarks/journal_guard_bench.py [--agents 1000] [--seconds 5]

The world is the default one scaled to `--agents`, on a real clock at 10x, committing every
100 ms. Each commit is timed as it runs (the mark included); the mark alone is timed by
calling it as often as there were commits.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from engine.config import load_scenario  # noqa: E402
from engine.journal import read_state  # noqa: E402
from engine.journal_file import Commit, inspect  # noqa: E402
from engine.world import World  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--agents", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()

    cfg = load_scenario("default").with_agents(args.agents)
    world = World(cfg.model_copy(update={"clock": cfg.clock.model_copy(update={"speed": 10.0})}))
    tmp = tempfile.TemporaryDirectory()
    path = Path(tmp.name) / "bench.db"
    journal = world.attach_journal(path, commit_interval=0.1)
    commit_times: list[float] = []
    commit = journal.commit

    def timed_commit() -> bool:
        t0 = time.perf_counter()
        ok = commit()
        commit_times.append(time.perf_counter() - t0)
        return ok

    journal.commit = timed_commit

    async def run() -> None:
        with anyio.move_on_after(args.seconds):
            await world.run()

    anyio.run(run)
    n = len(commit_times)
    lock = journal._lock
    last = journal.last_commit or Commit(0, 0.0)
    t0 = time.perf_counter()
    for _ in range(n):
        lock.mark(last)
    mark = (time.perf_counter() - t0) / n
    journal.close()

    checks, reads = [], []
    for _ in range(20):
        t0 = time.perf_counter()
        inspect(path)
        t1 = time.perf_counter()
        read_state(path)  # its own inspect included, as export and resume do
        t2 = time.perf_counter()
        checks.append(t1 - t0)
        reads.append(t2 - t1)
    check, read = statistics.median(checks), statistics.median(reads)
    p50 = statistics.median(commit_times)
    print(f"{args.agents} agents, {n} commits in {args.seconds:g} s, {journal.events_written:,} events")
    print(f"commit p50 {p50 * 1e3:.2f} ms (mark included); the mark alone {mark * 1e6:.1f} µs "
          f"= {mark / p50:.2%} of a commit")
    print(f"read-only check {check * 1e3:.2f} ms; read_state {read * 1e3:.1f} ms; check / read = {check / read:.2%}")


if __name__ == "__main__":
    main()
