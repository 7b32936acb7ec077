"""The Events panel: the world's news as it happens, newest at the bottom, with a filter.

The engine publishes far more than a person can read (every scrip transfer of a thousand
agents); the app subscribes only to the kinds worth a line and drains its bounded,
coalescing mailbox once per frame, so a burst costs the engine a deque append per event
and the screen one redraw."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import RichLog

from engine.waist import OPERATOR

from ..format import num
from .line import Line, retitle
from .panel import Panel

if TYPE_CHECKING:
    from engine.world import World

# Which filter shows which event kinds.
FILTERS: dict[str, frozenset[str] | None] = {
    "all": None,
    "economy": frozenset({"bid_placed", "bid_cancelled", "oracle_resolved", "scrip_minted", "listing_created",
                          "listing_sold", "listing_cancelled", "loan", "rate_sliced", "rate_transferred",
                          "compute_transferred", "artifact_transferred"}),
    "agents": frozenset({"agent_spawned", "agent_status", "config_changed", "brain_failed", "rate_changed",
                         "artifact_written"}),
    "problems": frozenset({"action_refused", "brain_failed", "sandbox_incident", "agent_status"}),
    "operator": frozenset(),  # special: lines that mention the operator
}
NAMES = tuple(FILTERS)


class EventsPanel(Panel):
    TITLE = "Events"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("f", "cycle_filter", "Filter")]

    def __init__(self, *, id: str | None = None, keep: int = 2000) -> None:
        super().__init__(id=id)
        self.lines: deque[tuple[str, Text]] = deque(maxlen=keep)
        self.filter = "all"
        self.total = 0

    def compose(self) -> ComposeResult:
        yield Line(id="events-summary", classes="summary")
        with Vertical(id="events-box", classes="box"):
            yield RichLog(id="events-log", max_lines=2000, wrap=False, markup=False, auto_scroll=True)

    def on_mount(self) -> None:
        self.query_one("#events-box").border_title = "Events"
        self._rewrite()  # what was collected before the panel was first shown

    def add(self, kind: str, line: Text) -> None:
        self.lines.append((kind, line))
        self.total += 1
        if self.is_mounted and self._shows(kind, line):
            self.query_one("#events-log", RichLog).write(line)

    def show_lines(self, lines: list[tuple[str, Text]]) -> None:
        """Replace every line (a replay moving to another moment)."""
        self.lines.clear()
        self.lines.extend(lines)
        self.total = len(lines)
        if self.is_mounted:
            self._rewrite()

    def _shows(self, kind: str, line: Text) -> bool:
        kinds = FILTERS[self.filter]
        if self.filter == "operator":
            return OPERATOR in line.plain
        return kinds is None or kind in kinds

    def action_cycle_filter(self) -> None:
        self.filter = NAMES[(NAMES.index(self.filter) + 1) % len(NAMES)]
        self._rewrite()
        retitle(self.query_one("#events-box"), subtitle=f"filter: {self.filter} (f)")

    def _rewrite(self) -> None:
        log = self.query_one("#events-log", RichLog)
        log.clear()
        for kind, line in self.lines:
            if self._shows(kind, line):
                log.write(line)

    def refresh_view(self, world: World, now: float) -> None:
        bus = world.bus
        self.query_one("#events-summary", Line).show(Text.assemble(
            ("published ", "dim"), (num(bus.seq), "bold"), ("  │  shown here ", "dim"), (num(self.total), ""),
            ("  │  refusals ", "dim"), (num(world.waist.refusals), "red" if world.waist.refusals else ""),
            ("  │  dropped by the UI's buffer ", "dim"), (num(bus.dropped), "yellow" if bus.dropped else "dim"),
        ))
        retitle(self.query_one("#events-box"), subtitle=f"filter: {self.filter} (f)")
