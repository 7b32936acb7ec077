"""Running a world without the UI: for scripts, benchmarks and batch experiments.

While it runs it prints a compact live summary (rich); at the end it can write the JSON
report. Returns an exit code (the README's table): 0 when every invariant held, 1 when one
broke, 3 when the journal could not be written, 128 + the signal when interrupted.

Nobody is there to fix a disk, so a run never waits on one for long: a journal commit
that fails pauses the world as in the app, and commits are retried; when one works the
world resumes by itself, and when none has for `journal_retry` seconds the run ends, its
journal consistent at its last commit. SIGINT or SIGTERM ends the run at the next pass of
the event loop, after a last commit attempt; a second one ends it at once, and so does a
watchdog when the engine has not stopped within a second (a loop held by a bug must not
make the process deaf). Ending without the last commit is safe: the journal survives
SIGKILL, so it holds the world as of its last commit.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, Callable

import anyio
from rich.console import Console
from rich.live import Live
from rich.table import Table

from .config import WorldConfig
from .report import build_report, write_report
from .world import World

if TYPE_CHECKING:
    from .journal import Journal

OK, INVARIANT_BROKEN, BAD_INPUT, JOURNAL_FAILED = 0, 1, 2, 3
INTERRUPT_SIGNALS = (signal.SIGINT, signal.SIGTERM)
STOP_GRACE = 1.0  # real seconds from an interrupt to the engine stopped, or the process ends


class Interrupted(BaseException):
    """SIGINT or SIGTERM where no run could stop gracefully (a world being built, or the
    second signal): unwinds the process. A journal commit it cuts into rolls back."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.code = 128 + signum


class Interrupts:
    """SIGINT and SIGTERM for a headless process, from before its world is built to its
    exit. During a run the first one stops the run (`stop` is called on the loop); before
    a run, or the second time, it raises `Interrupted` where the process is."""

    def __init__(self, grace: float = STOP_GRACE) -> None:
        self.signum: int | None = None
        self.stop: Callable[[], None] | None = None  # set while a run can stop gracefully
        self.grace = grace
        self._previous: dict[int, Any] = {}
        self._watchdog: threading.Timer | None = None

    def install(self) -> Interrupts:
        # Python-level handlers run between any two bytecodes, even while the loop is
        # busy in the engine, which anyio's loop-level receiver would not.
        for signum in INTERRUPT_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._on_signal)
        return self

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _on_signal(self, signum: int, frame) -> None:
        if self.signum is None and self.stop is not None:
            self.signum = signum
            self.stop()
            # A thread, so it fires even while the main thread never returns to the loop.
            self._watchdog = threading.Timer(self.grace, self._force, (signum,))
            self._watchdog.daemon = True
            self._watchdog.start()
            return
        raise Interrupted(self.signum or signum)

    def stopped(self) -> None:
        """The engine has stopped: what is left (the report) may take its time."""
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    def _force(self, signum: int) -> None:
        os.write(2, f"ecology: the run did not stop within {self.grace:g} s of "
                    f"{signal.Signals(signum).name}; exiting (the journal holds its last commit)\n".encode())
        os._exit(128 + signum)


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
    journal_retry: float = 5.0,
    interrupts: Interrupts | None = None,
) -> tuple[int, dict[str, Any]]:
    console = console or Console(stderr=True)
    if not isinstance(world, World):
        world = World(world, sandbox_factory=sandbox_factory)
    started = time.monotonic()
    live_enabled = console.is_terminal
    journal = world.journal
    if journal is not None:
        journal.resume_on_recovery = True  # no operator here to resume after a retry works
    cut_short: str | None = None
    run_scope = anyio.CancelScope()

    async def watch_journal(journal: Journal) -> None:
        # Real seconds, not the world's: a failing journal pauses the world's clock.
        nonlocal cut_short
        while True:
            await anyio.sleep(min(0.1, journal_retry / 4))
            since = journal.failing_since
            if since is not None and journal._monotonic() - since >= journal_retry:
                cut_short = (f"the journal failed and retries did not succeed for {journal_retry:g} s: "
                             f"{journal.failed}")
                run_scope.cancel()
                return

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

    if journal is not None and (warning := journal.lost_warning()):
        console.print(f"[yellow]warning: {warning}[/yellow]", soft_wrap=True)
    if interrupts is not None:
        # From the signal handler: cancel the run on the loop, as soon as it next turns.
        loop_call = _loop_caller()
        interrupts.stop = lambda: loop_call(run_scope.cancel)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(show)
            if journal is not None:
                tg.start_soon(watch_journal, journal)
            try:
                with run_scope:  # world.run commits a last time as it ends, however it ends
                    await world.run(duration)
            finally:
                tg.cancel_scope.cancel()
    finally:
        if interrupts is not None:
            interrupts.stop = None
            interrupts.stopped()
    if interrupts is not None and interrupts.signum is not None:
        cut_short = f"interrupted by {signal.Signals(interrupts.signum).name}"
    report = build_report(world, cut_short=cut_short)
    console.print(summary_table(world, started))
    console.print(world.sandbox_reason)
    code = OK
    if journal is not None:
        j = journal
        last = j.last_commit
        console.print(f"journal {j.path}: {j.commits} commits, {j.events_written:,} events"
                      + (f"; the file holds the world as of t={last.t:,.1f}s" if last else ""))
        if j.failed:
            console.print(f"[red]journal failed: {j.failed}[/red]", soft_wrap=True)
            code = JOURNAL_FAILED
        j.close()
    if cut_short:
        console.print(f"[red]the run was cut short: {cut_short}[/red]", soft_wrap=True)
    if report_path:
        write_report(report, report_path)
        console.print(f"report written to {report_path}")
    broken = [k for k, ok in report["invariants"].items() if not ok]
    if broken:
        console.print(f"[red]invariants broken: {', '.join(broken)}[/red]")
        code = code or INVARIANT_BROKEN
    else:
        console.print("all invariants hold")
    if interrupts is not None and interrupts.signum is not None:
        return 128 + interrupts.signum, report
    return code, report


def _loop_caller() -> Callable[[Callable[[], Any]], None]:
    import asyncio

    loop = asyncio.get_running_loop()

    def call(fn: Callable[[], Any]) -> None:
        loop.call_soon_threadsafe(fn)

    return call


def main_headless(world: World | WorldConfig, duration: float | None, report: str | None, sandbox_factory=None,
                  journal_retry: float = 5.0, interrupts: Interrupts | None = None) -> int:
    """Run and return the exit code; `interrupts`, when given, is installed already."""
    try:
        code, _ = anyio.run(run_headless, world, duration, report, None, 0.5, sandbox_factory, journal_retry,
                            interrupts)
    except (Interrupted, KeyboardInterrupt) as e:
        print("interrupted", file=sys.stderr)
        if isinstance(world, World) and world.journal is not None:
            world.journal.close()
        return e.code if isinstance(e, Interrupted) else 130
    return code
