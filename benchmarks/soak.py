"""Soak: the default world scaled to 500 agents for 6 virtual hours, with faults on,
invariants checked at every metrics window, and RSS watched after warm-up.

    .venv/bin/python benchmarks/soak.py [--agents 500] [--hours 6] [--journal soak.db]

Faults: 10% of the agents have brains that raise 1% of the time; an event subscriber never
reads; the world is journalled (commits every 100 ms), and the journal's disk fills up once
an hour and frees again (the world pauses, then the operator resumes it); coders' runs are
refused for want of a sandbox (the headless default). Exits 1 if any window broke an
invariant or RSS grew 10% or more after warm-up (the end of hour 2) to the end.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import anyio

from engine.brains import register
from engine.brains.scripted import Boltzmann
from engine.clock import VirtualClock
from engine.config import load_scenario, parse_world
from engine.world import World


@register
class SoakFlaky(Boltzmann):
    name = "soak_flaky"

    def decide(self, view):
        if self.rng.random() < 0.01:
            raise RuntimeError("injected brain fault")
        return super().decide(view)


def rss_mb() -> float:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def soak_config(agents: int):
    data = load_scenario("default").with_agents(int(agents * 0.9)).model_dump()
    data["agents"].append({"brain": "soak_flaky", "count": agents - int(agents * 0.9), "scrip": 5, "rate": 1.0,
                           "prefix": "x"})
    data["compute"]["total_rate"] = None
    data["operator"]["rate"] = 10.0
    data["metrics"]["interval"] = 60.0
    return parse_world(data, source="soak")


async def soak(agents: int, hours: float, journal_path: Path) -> int:
    world = World(soak_config(agents), clock=VirtualClock())
    journal = world.attach_journal(journal_path, commit_interval=0.1)
    world.bus.subscribe(maxlen=1000)  # never read
    windows = world.bus.subscribe(["window_closed"], maxlen=1_000_000)
    broken: list[int] = []
    rss: list[tuple[float, float]] = []
    started = time.monotonic()
    print(f"soak: {len(world.agents)} agents, {hours:g} virtual hours, journal {journal_path}")
    async with anyio.create_task_group() as tg:
        tg.start_soon(world.run, hours * 3600)
        hour = 0
        while world.running or hour == 0:
            await anyio.sleep(0.25)
            for ev in windows.drain():
                if not ev.window["invariants_ok"]:
                    broken.append(ev.window["index"])
            if world.clock.now() >= (hour + 1) * 3600 and hour < hours:
                hour += 1
                rss.append((hour, rss_mb()))
                # The journal's disk fills up for a moment: the world pauses; then resumes.
                pages = journal.db.execute("PRAGMA page_count").fetchone()[0]
                journal.db.execute(f"PRAGMA max_page_count = {pages}")
                while journal.failed is None and world.running:
                    await journal.flush()
                journal.db.execute("PRAGMA max_page_count = 1073741823")
                await journal.flush()
                if world.paused:
                    world.invoke("world", "resume")
                print(f"  hour {hour}: t={world.clock.now():,.0f}s actions {world.total_actions:,} "
                      f"rss {rss[-1][1]:.1f} MB windows broken {len(broken)} journal {journal.commits} commits "
                      f"wall {time.monotonic() - started:,.0f}s", flush=True)
                if hour >= hours:
                    break
    for ev in windows.drain():
        if not ev.window["invariants_ok"]:
            broken.append(ev.window["index"])
    inv = world.invariants()
    # Warm-up: the first two hours, while the world's bounded memories fill (1,000 settled
    # contracts, 1,000 resolutions and closed listings, the metrics windows). Growth is
    # judged from then on; growth from hour 1 is printed too.
    base = rss[1][1] if len(rss) >= 3 else rss[0][1]
    growth = rss[-1][1] / base - 1
    growth_h1 = rss[-1][1] / rss[0][1] - 1
    failures = sum(a.total_failures for a in world.agents.values())
    print(f"done: {world.total_actions:,} actions, {failures:,} brain failures, "
          f"{len(world.metrics.windows)} windows kept, invariants now {all(inv.values())}, "
          f"windows broken {len(broken)}, RSS after warm-up (hour 2) -> end {base:.1f} -> {rss[-1][1]:.1f} MB "
          f"({100 * growth:+.1f}%; from hour 1 {100 * growth_h1:+.1f}%), wall {time.monotonic() - started:,.0f}s")
    journal.close()
    return 0 if not broken and all(inv.values()) and growth < 0.10 else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--hours", type=float, default=6)
    parser.add_argument("--journal", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.journal or Path(tmp) / "soak.db"
        sys.exit(anyio.run(soak, args.agents, args.hours, path))


if __name__ == "__main__":
    main()
