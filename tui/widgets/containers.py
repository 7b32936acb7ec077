"""The Containers panel: each agent's sandbox — CPU, memory against its limit, pids,
restarts, OOM kills — and the incidents (OOM kill, timeout, pids exhaustion) as they come.

Readings come from the world's latest stats (`world.sandbox_stats`) and from the
coalescing `sandbox_stats` events (a burst of readings of one agent collapses into the
newest), so the panel fills in as soon as a daemon answers, without asking it anything.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import RichLog, Static

from engine.events import Event

from ..format import CONTAINER_STYLE, bar, nbytes, world_t
from .line import Line, retitle
from .live_table import Col, LiveTable
from .panel import Panel

if TYPE_CHECKING:
    from engine.world import World

COLUMNS = (
    Col("agent", "agent", 8),
    Col("status", "status", 9),
    Col("cpu", "cpu %", 6, "right"),
    Col("cpus", "cpus", 5, "right"),
    Col("memory", "memory", 20),
    Col("pids", "pids", 5, "right"),
    Col("restarts", "restarts", 8, "right"),
    Col("oom", "OOM", 4, "right"),
    Col("backend", "backend", 10),
)


class SandboxFeed:
    """What the app has heard from the sandboxes: latest reading per agent, incidents."""

    def __init__(self, keep: int = 200) -> None:
        self.stats: dict[str, Any] = {}
        self.incidents: deque[Event] = deque(maxlen=keep)
        self.count = 0  # incidents ever heard (the deque forgets the oldest)

    def ingest(self, events: list[Event]) -> list[Event]:
        """Take the sandbox events of a frame; returns the new incidents."""
        new = []
        for ev in events:
            if ev.kind == "sandbox_stats":
                self.stats[ev.agent_id] = ev.stats
            elif ev.kind == "sandbox_incident":
                self.incidents.append(ev)
                self.count += 1
                new.append(ev)
        return new

    def readings(self, world: World) -> dict[str, Any]:
        # The world's own table is the truth when it has one; events fill in otherwise.
        return {**self.stats, **getattr(world, "sandbox_stats", {})}


class ContainersPanel(Panel):
    TITLE = "Containers"
    SELECTS: ClassVar[dict[str, str]] = {"containers-table": "container"}
    BINDINGS: ClassVar[list[BindingType]] = [Binding("h", "app.agent_history", "History")]

    def __init__(self, feed: SandboxFeed, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.feed = feed
        self._shown_incidents = 0

    def compose(self) -> ComposeResult:
        yield Line(id="containers-summary", classes="summary")
        with Vertical(id="containers-box", classes="box"):
            yield Static(id="containers-empty", classes="empty")
            yield LiveTable(COLUMNS, id="containers-table")
        with Vertical(id="incidents-box", classes="box"):
            yield RichLog(id="incidents", max_lines=200, wrap=False, markup=False)

    def on_mount(self) -> None:
        self.query_one("#containers-box").border_title = "Sandboxes"
        self.query_one("#incidents-box").border_title = "Incidents"

    def refresh_view(self, world: World, now: float) -> None:
        sandbox = getattr(world.sandbox, "name", None)
        reason = getattr(world, "sandbox_reason", None) or ("no sandbox" if sandbox is None else sandbox)
        self.query_one("#containers-summary", Line).show(Text(reason, "bold" if sandbox else "dim"))
        readings = self.feed.readings(world)
        table = self.query_one("#containers-table", LiveTable)
        keys = sorted(readings, key=lambda a: (len(a), a))
        table.set_keys(keys)
        table.update_rows((k, self.row(readings[k])) for k in keys)
        empty = self.query_one("#containers-empty", Static)
        empty.display = not keys
        table.display = bool(keys)
        if not keys and not empty.content:
            empty.update(Text(
                "No sandbox readings yet. Readings appear when an agent first runs code"
                + (" in its sandbox." if sandbox else ", once a sandbox is open (Docker when a daemon answers, else bubblewrap)."),
                "dim",
            ))
        ooms = sum(s.oom_kills for s in readings.values())
        restarts = sum(s.restarts for s in readings.values())
        retitle(self.query_one("#containers-box"), subtitle=f"{len(keys)} sandboxes · {restarts} restarts · {ooms} OOM kills")
        log = self.query_one("#incidents", RichLog)
        unseen = min(self.feed.count - self._shown_incidents, len(self.feed.incidents))
        for ev in list(self.feed.incidents)[len(self.feed.incidents) - unseen:] if unseen > 0 else ():
            log.write(Text.assemble((f"{world_t(ev.t):>8} ", "dim"), (f"{ev.failure:<8}", "bold red"),
                                    (f"{ev.agent_id} ", "bold"), ev.detail))
        self._shown_incidents = self.feed.count

    def row(self, s: Any) -> tuple:
        memory: Text | str = nbytes(s.memory_bytes)
        if s.memory_limit_bytes:
            frac = s.memory_bytes / s.memory_limit_bytes
            memory = Text.assemble(bar(frac, 8), f" {s.memory_bytes / 2**20:.0f}/{s.memory_limit_bytes / 2**20:.0f} MiB")
        return (
            s.agent_id,
            Text(s.status, CONTAINER_STYLE.get(s.status, "")),
            f"{s.cpu_percent:.0f}",
            f"{s.cpus:g}",
            memory,
            str(s.pids),
            Text(str(s.restarts), "yellow" if s.restarts else ""),
            Text(str(s.oom_kills), "bold red" if s.oom_kills else ""),
            s.backend,
        )
