"""What the Metrics panel's charts cost a frame, beside the app's usual frame.

    .venv/bin/python benchmarks/charts_bench.py [--minutes 60] [--repeat 5]

The seeded demo world run for `--minutes` of world time (one metrics window per 10 s), in
the app at 160x45 on the Metrics panel, span "all". Measured, each the median of
`--repeat` runs, rendering included (plotext builds a chart when Textual renders it):

* all 8 charts rebuilt: what showing the panel or changing the span costs, once;
* a frame after a window closed: at most BUDGET (2) charts rebuilt, the rest kept;
* a frame with no new window: nothing rebuilt;
* baseline, in the same run: a frame of the Agents panel (its table's visible rows
  rebuilt, as every frame does), the app's usual frame.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "tui"))  # the demo world

from demo import demo_config, demo_world
from tui.app import EcologyApp
from tui.widgets.metrics import BUDGET, GAP, Chart, MetricsPanel


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


async def measure(world, repeat: int) -> dict[str, float]:
    app = EcologyApp(demo_config(), world=world, run_engine=False, cursor_blink=False, refresh_s=60.0)
    out: dict[str, float] = {"windows": len(world.metrics.windows)}
    async with app.run_test(size=(160, 45)) as pilot:
        agents = app.query_one("#agents")

        def frame(panel) -> float:
            before = {c: c._key for c in panel.query(Chart)}
            t0 = time.perf_counter()
            panel.refresh_view(world, world.clock.now())
            for chart, key in before.items():
                if chart._key != key:
                    chart.render()  # the compositor renders a chart only when it was rebuilt
            return time.perf_counter() - t0

        def agents_frame() -> float:
            t0 = time.perf_counter()
            agents.refresh_view(world, world.clock.now())
            for table in agents.query("LiveTable"):
                for y in range(table.size.height):
                    table.render_line(y)
            return time.perf_counter() - t0

        out["agents_frame_ms"] = median_ms([agents_frame() for _ in range(repeat)])
        await pilot.press("7", "w", "w")
        await pilot.pause()
        panel = app.query_one(MetricsPanel)
        charts = list(panel.query(Chart))

        def all_charts() -> float:
            for c in charts:
                c._key = ("stale",)
            panel._all_now = True
            return frame(panel)

        def new_window() -> float:
            for c in charts:
                c._key = ("stale",)  # as if a window had closed: every chart is stale
            panel._all_now = False
            panel._last_round = 0.0  # the last budgeted round was long enough ago
            return frame(panel)

        out["all_charts_ms"] = median_ms([all_charts() for _ in range(repeat)])
        out["new_window_frame_ms"] = median_ms([new_window() for _ in range(repeat)])
        all_charts()
        out["idle_frame_ms"] = median_ms([frame(panel) for _ in range(repeat)])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0, help="world minutes before measuring (default 60)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    world = demo_world(until=args.minutes * 60.0)
    r = asyncio.run(measure(world, args.repeat))
    base = r["agents_frame_ms"]
    print(f"{int(r['windows'])} windows, 160x45, span all; medians of {args.repeat}")
    print(f"  baseline: an Agents panel frame          {base:8.1f} ms")
    for key, label in (("all_charts_ms", "all 8 charts rebuilt (shown, span)"),
                       ("new_window_frame_ms", f"a window closed (<= {BUDGET} charts, {GAP:g}s apart)"),
                       ("idle_frame_ms", "no new window")):
        print(f"  {label:38} {r[key]:8.1f} ms  ({r[key] / base:5.2f}x the baseline)")


if __name__ == "__main__":
    main()
