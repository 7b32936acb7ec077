"""The Agents panel (the default view): every agent, its status, scrip, compute and pace.

A thousand agents cost what is on screen: visible rows are rebuilt every frame, the rest
in rolling chunks. On wide terminals an inspector beside the table follows the cursor; on
tall ones the newest events run underneath.
"""

from __future__ import annotations

from collections import Counter, deque
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import RichLog, Static

from engine.ids import ACTING, CRASHED, FROZEN, PAUSED, SLEEPING, STATUSES, STOPPED, THINKING

from ..details import agent_detail
from ..format import STATUS_STYLE, compute_text, num, principal_text, status_text
from .line import Line, retitle
from .live_table import Col, LiveTable
from .panel import Panel

if TYPE_CHECKING:
    from engine.world import World

COLUMNS = (
    Col("agent", "agent", 8),
    Col("status", "status", 8),
    Col("scrip", "scrip", 7, "right"),
    Col("compute", "compute", 8, "right"),
    Col("apm", "act/min", 7, "right"),
    Col("rate", "rate/s", 6, "right"),
    Col("brain", "brain", 14),
    Col("owner", "config", 8),
    Col("actions", "actions", 8, "right"),
    Col("last", "last action", 22),
)
SORTS = ("id", "scrip", "debt", "pace", "status")
STATUS_ORDER = {s: i for i, s in enumerate((CRASHED, FROZEN, PAUSED, ACTING, THINKING, SLEEPING, STOPPED))}
ROLLING = 64  # off-screen rows refreshed per frame


class ActivityMeter:
    """Actions per minute for each agent, over the last minute of world time.

    Samples every agent's action count at most once per world second; before a sample a
    minute old exists it falls back to the agent's lifetime average, so the number is
    meaningful from the first frame (and identical across runs of a stopped world)."""

    def __init__(self, span: float = 60.0) -> None:
        self.span = span
        self.samples: deque[tuple[float, dict[str, int]]] = deque()

    def sample(self, world: World, now: float) -> None:
        if self.samples and now - self.samples[-1][0] < 1.0:
            return
        self.samples.append((now, {a.id: a.actions for a in world.agents.values()}))
        while len(self.samples) > 2 and self.samples[1][0] <= now - self.span:
            self.samples.popleft()

    def per_minute(self, world: World, agent_id: str, now: float) -> float:
        agent = world.agents[agent_id]
        if self.samples:
            t0, counts = self.samples[0]
            if now - t0 >= 1.0 and agent_id in counts:
                return (agent.actions - counts[agent_id]) / (now - t0) * 60.0
        age = now - agent.config_artifact.created
        return agent.actions / age * 60.0 if age > 0 else 0.0


class AgentsPanel(Panel):
    TITLE = "Agents"
    SELECTS: ClassVar[dict[str, str]] = {"agents-table": "agent"}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("t", "app.transfer_scrip", "Give scrip"),
        Binding("c", "app.transfer_compute", "Rescue"),
        Binding("e", "app.configure", "Config"),
        Binding("k", "app.set_rate", "Rate"),
        Binding("K", "app.set_capacity", "Capacity", show=False),
        Binding("g", "app.transfer_rate", "Give rate", show=False),
        Binding("p", "app.toggle_agent_pause", "Pause agent", show=False),
        Binding("x", "app.stop_agent", "Stop", show=False),
        Binding("R", "app.restart_agent", "Restart", show=False),
        Binding("s", "cycle_sort", "Sort"),
    ]

    def __init__(self, meter: ActivityMeter, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.meter = meter
        self.sort = "id"
        self._frames = 0
        self._order_at = -1

    def compose(self) -> ComposeResult:
        yield Line(id="agents-summary", classes="summary")
        with Horizontal(id="agents-body"):
            with Vertical(id="agents-box", classes="box"):
                yield LiveTable(COLUMNS, id="agents-table")
            with VerticalScroll(id="agents-inspector", classes="box inspector"):
                yield Static(id="agents-inspector-body")
        with Vertical(id="agents-tail", classes="box"):
            yield RichLog(id="agents-events", max_lines=200, wrap=False, markup=False, auto_scroll=True)

    def on_mount(self) -> None:
        self.query_one("#agents-box").border_title = "Agents"
        self.query_one("#agents-inspector").border_title = "Inspector"
        self.query_one("#agents-tail").border_title = "Events"

    def next_sort(self) -> str:
        return SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)]

    def action_cycle_sort(self) -> None:
        self.sort = self.next_sort()
        self._order_at = -1  # re-sort at the next frame
        self.app.refresh_view()

    # -- refresh -------------------------------------------------------------------------------
    def refresh_view(self, world: World, now: float) -> None:
        self._frames += 1
        table = self.query_one("#agents-table", LiveTable)
        ids = list(world.agents)
        # Re-sort by a live value at most once a second: a calm table beats a twitchy one.
        if self.sort == "id":
            table.set_keys(ids)
        elif self._order_at < 0 or self._frames - self._order_at >= 4 or len(ids) != len(table.keys_in_order):
            self._order_at = self._frames
            table.set_keys(sorted(ids, key=self._sort_key(world, now)))
        keys = table.visible_keys()
        keys += table.rolling_keys(ROLLING)
        table.update_rows((k, self.row(world, k, now)) for k in dict.fromkeys(keys))
        self._summary(world, now)
        retitle(self.query_one("#agents-box"), subtitle=f"sort: {self.sort}")
        if self.screen.has_class("-wide"):
            self._inspect(world, now, table.selected_key)

    def _sort_key(self, world: World, now: float):
        ledger = world.ledger
        agents = world.agents
        if self.sort == "scrip":
            return lambda a: (-ledger.scrip[a], a)
        if self.sort == "debt":
            return lambda a: (ledger.buckets[a].peek(now), a)
        if self.sort == "pace":
            return lambda a: (-self.meter.per_minute(world, a, now), a)
        return lambda a: (STATUS_ORDER.get(agents[a].status, 9), a)

    def row(self, world: World, agent_id: str, now: float) -> tuple:
        agent = world.agents[agent_id]
        ledger = world.ledger
        bucket = ledger.buckets[agent_id]
        owner = agent.config_artifact.owner
        last = "" if agent.last_action is None else agent.last_action.describe()
        return (
            agent_id,
            status_text(agent.status),
            num(ledger.scrip[agent_id]),
            compute_text(bucket.peek(now)),
            f"{self.meter.per_minute(world, agent_id, now):,.0f}",
            f"{bucket.rate:g}",
            str(agent.config.get("brain")),
            Text("self", "dim") if owner == agent_id else principal_text(owner),
            num(agent.actions),
            last,
        )

    def _summary(self, world: World, now: float) -> None:
        counts = Counter(a.status for a in world.agents.values())
        ledger = world.ledger
        line = Text(no_wrap=True, overflow="ellipsis")
        for status in STATUSES:
            n = counts.get(status, 0)
            if n or status in (FROZEN, CRASHED):
                line.append(f"{status} ", "dim")
                line.append(f"{n}  ", STATUS_STYLE[status] if n else "dim")
        line.append("│ ", "dim")
        line.append("scrip ", "dim")
        line.append(f"{num(ledger.scrip_supply)}")
        line.append(f" +{num(ledger.held_total)} held", "dim")
        line.append("  minted ", "dim")
        line.append(num(ledger.minted))
        self.query_one("#agents-summary", Line).show(line)
        retitle(self.query_one("#agents-box"), f"Agents [{num(len(world.agents))}]")

    def _inspect(self, world: World, now: float, agent_id: str | None) -> None:
        body = self.query_one("#agents-inspector-body", Static)
        if agent_id is None:
            body.update(Text("no agent selected", "dim"))
            return
        retitle(self.query_one("#agents-inspector"), f"Inspector: {agent_id}")
        body.update(agent_detail(world, agent_id, now, self.meter.per_minute(world, agent_id, now), compact=True))

    def write_events(self, lines: list[Text]) -> None:
        # Written even while hidden (short terminals): a log that is not displayed defers
        # rendering, and growing the terminal then shows a tail that is already filled.
        log = self.query_one("#agents-events", RichLog)
        for line in lines[-200:]:
            log.write(line)
