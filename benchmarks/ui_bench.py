"""The app under load: keypress-to-screen latency, and what attaching the UI costs the engine.

    .venv/bin/python benchmarks/ui_bench.py [--agents 1000] [--speed 1] [--seconds 5] [--presses 80]
    .venv/bin/python benchmarks/ui_bench.py --virtual   # virtual time, always-runnable agents

One process, one run, the Boltzmann scenario scaled to N agents on a real clock (or, with
`--virtual`, on a virtual clock with compute so ample that every agent can always run: the
engine never waits for anything, the hardest case for the UI):

1. Headless: the world alone on an event loop; engine actions/s over `--seconds`.
2. Attached: a fresh world of the same config inside the app (headless Textual driver,
   120x36), the engine running on the app's loop as it does in `ecology`. Engine actions/s
   over the same span, while an input thread types keys like a person would.

Latency is measured from the moment the input thread hands a key to the driver (as a
terminal's input thread does) to the end of the first screen update that shows the
key's effect: the cursor one row down or up, the table re-sorted, another panel shown.
In headless mode Textual computes each update but writes nothing, so the app here also
renders every update to the bytes a terminal would receive, to count that cost too.

At speed 1 the scenario is compute-bound (each agent earns about one action a second), so
the ratio mostly shows that the UI does not starve the agents; `--speed 1000` makes the
engine CPU-bound, the harder case for both figures. Machines here are shared and noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from textual import events
from textual._compositor import CompositorUpdate

from engine.clock import RealClock, VirtualClock
from engine.config import load_scenario
from engine.world import World
from tui.app import EcologyApp
from tui.widgets.agents import AgentsPanel
from tui.widgets.live_table import LiveTable

WARMUP = 1.0


SLICE: int | None = None  # --slice: the engine's turns between yields (config agents_policy)
VIRTUAL = False  # --virtual: virtual time, ample compute


def config(agents: int):
    cfg = load_scenario("boltzmann").with_agents(agents)
    if VIRTUAL:  # nobody ever freezes or waits: every agent is always runnable
        group = cfg.agents[0].model_copy(update={"rate": 1e6, "capacity": 1e12})
        cfg = cfg.model_copy(update={"agents": [group]})
    if SLICE is not None:
        policy = cfg.agents_policy.model_copy(update={"slice_actions": SLICE})
        cfg = cfg.model_copy(update={"agents_policy": policy})
    return cfg


def make_clock(speed: float):
    return VirtualClock() if VIRTUAL else RealClock(speed)


def headless_rate(agents: int, speed: float, seconds: float) -> float:
    world = World(config(agents), clock=make_clock(speed))

    async def main() -> float:
        async with anyio.create_task_group() as tg:
            tg.start_soon(world.run)
            await anyio.sleep(WARMUP)
            a0, t0 = world.total_actions, time.perf_counter()
            await anyio.sleep(seconds)
            a1, t1 = world.total_actions, time.perf_counter()
            tg.cancel_scope.cancel()
        return (a1 - a0) / (t1 - t0)

    return anyio.run(main)


@dataclass
class Probe:
    name: str
    shown: Callable[[], bool]  # does the screen now show the key's effect?
    sent: float = 0.0
    seen: float | None = None
    done: threading.Event = field(default_factory=threading.Event)


class BenchApp(EcologyApp):
    """The real app, plus a hook at the end of every screen update."""

    probe: Probe | None = None
    updates = 0

    def _display(self, screen, renderable) -> None:
        if isinstance(renderable, CompositorUpdate) and self.is_headless:
            renderable.render_segments(self.console)  # the bytes a terminal would get
        super()._display(screen, renderable)

    def post_display_hook(self) -> None:
        self.updates += 1
        probe = self.probe
        if probe is not None and probe.shown():
            probe.seen = time.perf_counter()
            self.probe = None
            probe.done.set()


def typist(app: BenchApp, presses: int, results: list[Probe], stop: threading.Event) -> None:
    """A person at the keyboard, on the input thread: a key every 60-160 ms."""
    import random

    rng = random.Random(1)
    table = app.query_one("#agents-table", LiveTable)
    panel = app.query_one(AgentsPanel)
    table.focus()
    switcher = app._switcher
    # A round: five cursor moves, a full cycle of sorts (back to id order, so cursor moves
    # stay predictable), a trip to the metrics panel and back.
    plan = ["down", "down", "down", "up", "up", "s", "s", "s", "s", "s", "7", "1"]
    for i in range(presses):
        if stop.is_set():
            return
        key = plan[i % len(plan)]
        if key in ("down", "up"):
            row = table.cursor_row + (1 if key == "down" else -1)
            probe = Probe("cursor", lambda r=row: table.cursor_row == r and switcher.current == "agents")
        elif key == "s":
            expected = panel.next_sort()
            probe = Probe("sort 1,000 rows", lambda e=expected: panel.sort == e and switcher.current == "agents")
        elif key == "7":
            probe = Probe("panel switch", lambda: switcher.current == "metrics")
        else:
            probe = Probe("panel switch", lambda: switcher.current == "agents")
        probe.sent = time.perf_counter()
        app.probe = probe
        app._driver.send_message(events.Key(key, key if len(key) == 1 else None))
        if not probe.done.wait(5.0):
            print(f"  no screen update within 5 s for {key!r}", file=sys.stderr)
            app.probe = None
        else:
            results.append(probe)
        time.sleep(rng.uniform(0.06, 0.16))


async def attached(agents: int, speed: float, seconds: float, presses: int) -> dict:
    world = World(config(agents), clock=make_clock(speed))
    app = BenchApp(world.config, world=world, run_engine=True, tune_gc=True)  # as `ecology` runs it
    results: list[Probe] = []
    async with app.run_test(size=(120, 36)) as pilot:
        await asyncio.sleep(WARMUP)
        # Idle watching: the UI refreshes at its bounded rate, nobody types.
        a0, t0 = world.total_actions, time.perf_counter()
        await asyncio.sleep(seconds)
        a1, t1 = world.total_actions, time.perf_counter()
        # Typing: a person drives the UI while the world runs.
        stop = threading.Event()
        thread = threading.Thread(target=typist, args=(app, presses, results, stop), daemon=True)
        b0, s0, u0 = world.total_actions, time.perf_counter(), app.updates
        thread.start()
        while thread.is_alive():
            await asyncio.sleep(0.05)
        b1, s1, u1 = world.total_actions, time.perf_counter(), app.updates
        stop.set()
        frames = app.frames
        await pilot.pause(0)
    return {
        "watching": (a1 - a0) / (t1 - t0),
        "typing": (b1 - b0) / (s1 - s0),
        "typing_s": s1 - s0,
        "updates_per_s": (u1 - u0) / (s1 - s0),
        "frames": frames,
        "probes": results,
    }


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--speed", type=float, default=1.0, help="world seconds per real second")
    parser.add_argument("--seconds", type=float, default=5.0, help="each throughput measurement")
    parser.add_argument("--presses", type=int, default=80)
    parser.add_argument("--slice", type=int, default=None,
                        help="engine turns between yields (default: the world's, 32); both runs use it")
    parser.add_argument("--virtual", action="store_true", help="virtual time, always-runnable agents")
    args = parser.parse_args()
    global SLICE, VIRTUAL
    SLICE, VIRTUAL = args.slice, args.virtual
    clock = "virtual clock, ample compute" if VIRTUAL else f"real clock x{args.speed:g}"
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; "
          f"boltzmann x{args.agents}, {clock}, {config(args.agents).agents_policy.slice_actions} turns per slice")
    head = headless_rate(args.agents, args.speed, args.seconds)
    res = asyncio.run(attached(args.agents, args.speed, args.seconds, args.presses))
    lat = [(p.seen - p.sent) * 1000 for p in res["probes"]]
    print(f"engine headless          {head:>12,.0f} actions/s")
    print(f"engine + app, watching   {res['watching']:>12,.0f} actions/s  ({100 * res['watching'] / head:.0f}% of headless)")
    print(f"engine + app, typing     {res['typing']:>12,.0f} actions/s  ({100 * res['typing'] / head:.0f}% of headless)"
          f"  [{res['typing_s']:.1f} s, {res['updates_per_s']:.0f} screen updates/s]")
    if lat:
        print(f"keypress -> screen update: n={len(lat)}  p50 {pct(lat, 50):.1f} ms  p95 {pct(lat, 95):.1f} ms"
              f"  max {max(lat):.1f} ms  mean {statistics.mean(lat):.1f} ms")
        by: dict[str, list[float]] = {}
        for p in res["probes"]:
            by.setdefault(p.name, []).append((p.seen - p.sent) * 1000)
        for name, xs in by.items():
            print(f"  {name:<16} n={len(xs):>3}  p50 {pct(xs, 50):6.1f} ms  p95 {pct(xs, 95):6.1f} ms")
    ok = lat and pct(lat, 95) < 100 and res["watching"] >= 0.7 * head and res["typing"] >= 0.7 * head
    print("targets (p95 < 100 ms, >= 70% of headless):", "met" if ok else "NOT met")


if __name__ == "__main__":
    main()
