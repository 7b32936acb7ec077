"""Running a world without the UI: for scripts, benchmarks and batch experiments.

While it runs it prints a compact live summary (rich); at the end it can write the JSON
report. Returns an exit code: 0 when every invariant held, 1 when one broke.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import anyio
from rich.console import Console
from rich.live import Live
from rich.table import Table

from .config import WorldConfig
from .report import build_report, write_report
from .world import World


def summary_table(world: World, started: float) -> Table:
    now = world.clock.now()
    ledger = world.ledger
    statuses: dict[str, int] = {}
    for a in world.agents.values():
        statuses[a.status] = statuses.get(a.status, 0) + 1
    window = world.metrics.windows[-1] if world.metrics.windows else {}
    table = Table.grid(padding=(0, 2))
    table.add_row(
        f"[b]{world.config.name}[/b] t={now:,.1f}s",
        f"agents {len(world.live_ids)}",
        " ".join(f"{k} {v}" for k, v in sorted(statuses.items())),
    )
    table.add_row(
        f"actions {world.total_actions:,}",
        f"scrip {ledger.scrip_supply:,} (+{ledger.held_total:,} held)",
        f"gini {window.get('gini', 0):.3f}  debt {window.get('compute_debt', 0):,.1f}  "
        f"wall {time.monotonic() - started:,.1f}s",
    )
    return table


async def run_headless(
    world: World | WorldConfig,
    duration: float | None,
    report_path: str | None = None,
    console: Console | None = None,
    refresh: float = 0.5,
    sandbox_factory=None,
) -> tuple[int, dict[str, Any]]:
    console = console or Console(stderr=True)
    if not isinstance(world, World):
        world = World(world, sandbox_factory=sandbox_factory)
    started = time.monotonic()
    live_enabled = console.is_terminal

    async def show() -> None:
        # Not an engine task: it reads snapshots on real time and never holds the clock.
        if live_enabled:
            with Live(summary_table(world, started), console=console, refresh_per_second=4) as live:
                while True:
                    await anyio.sleep(refresh)
                    live.update(summary_table(world, started))
        else:
            while True:
                await anyio.sleep(5.0)
                console.print(summary_table(world, started))

    async with anyio.create_task_group() as tg:
        tg.start_soon(show)
        try:
            await world.run(duration)
        finally:
            tg.cancel_scope.cancel()
    report = build_report(world)
    console.print(summary_table(world, started))
    console.print(world.sandbox_reason)
    if world.journal is not None:
        j = world.journal
        console.print(f"journal {j.path}: {j.commits} commits, {j.events_written:,} events"
                      + (f"; FAILING: {j.failed}" if j.failed else ""))
    if report_path:
        write_report(report, report_path)
        console.print(f"report written to {report_path}")
    broken = [k for k, ok in report["invariants"].items() if not ok]
    if broken:
        console.print(f"[red]invariants broken: {', '.join(broken)}[/red]")
        return 1, report
    console.print("all invariants hold")
    return 0, report


def main_headless(world: World | WorldConfig, duration: float | None, report: str | None, sandbox_factory=None) -> int:
    try:
        code, _ = anyio.run(run_headless, world, duration, report, None, 0.5, sandbox_factory)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return code
