"""The Textual app: watch a running world and steer it.

Layout (after k9s and btop): a one-line header with the world's state, a one-line panel
switcher (keys 1-7), one panel at a time, and the footer with the keys that work here.

Liveness without jank:
* The engine runs as a task on the app's own event loop (`World.run` in a worker); the UI
  never waits on it and it never waits on the UI.
* The screen is redrawn from the world's state at a bounded rate (`REFRESH_S`), whatever
  the engine's event rate; only the visible panel is refreshed, and its tables re-render
  only the rows whose values changed (widgets/live_table.py).
* Events reach the UI through one bounded, coalescing bus subscription drained once per
  frame, limited to the kinds worth a line (never the per-transfer firehose).
* Steering goes through `world.invoke` as the operator only (see steering.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.css.query import NoMatches
from textual.widgets import ContentSwitcher, Footer

from engine import heap
from engine.actions import Result
from engine.agent import remember_history
from engine.config import WorldConfig
from engine.events import EVENT_KINDS
from engine.world import World

from .commands import SteeringCommands
from .details import (
    agent_detail,
    bid_detail,
    config_detail,
    container_detail,
    contract_detail,
    listing_detail,
    resolution_detail,
    slice_detail,
)
from .format import describe_event
from .history import AgentNews
from .panels import COUNTS, PANELS, agents_named, badges
from .screens.detail import DetailScreen
from .screens.form import Field, FormScreen
from .screens.help import HelpScreen, binding_rows
from .steering import SteeringMixin
from .widgets.agents import ActivityMeter, AgentsPanel
from .widgets.containers import ContainersPanel, SandboxFeed
from .widgets.contracts import ContractsPanel
from .widgets.events import EventsPanel
from .widgets.header import WorldHeader
from .widgets.live_table import LiveTable
from .widgets.metrics import MetricsPanel
from .widgets.oracle import OraclePanel
from .widgets.panel import Panel
from .widgets.panel_tabs import PanelTabs
from .widgets.rights import RightsPanel

REFRESH_S = 0.25  # UI redraw period: bounded, whatever the engine's event rate
ENGINE_PAUSE_S = 0.001  # the most the event loop gets after a burst while it has work ready (engine/scheduler.py _give_way)
# The UI listens to every kind but the circulation itself: a thousand agents moving scrip
# would otherwise fill its mailbox with lines nobody reads.
QUIET_KINDS = frozenset({"scrip_transferred", "window_closed"})
UI_KINDS = frozenset(EVENT_KINDS) - QUIET_KINDS


class EcologyApp(SteeringMixin, App):
    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses elsewhere find it too
    TITLE = "Agent Ecology"
    COMMANDS = App.COMMANDS | {SteeringCommands}
    # Wide terminals get an inspector beside the agents; tall ones an events tail below;
    # the metrics grid has three layouts (narrow, medium, wide).
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-narrow"), (100, "-medium"), (150, "-wide")]
    VERTICAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-short"), (42, "-tall")]
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "toggle_pause", "Pause/Resume"),
        # Shown in help, not the footer: at 80 columns the footer is for this panel's keys.
        Binding("plus,equals_sign", "faster", "Faster", key_display="+", show=False),
        Binding("minus", "slower", "Slower", key_display="-", show=False),
        Binding("n", "spawn", "Spawn", show=False),
        Binding("h", "agent_history", "Agent's history", show=False),
        Binding("question_mark,f1", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit", show=False),
        *(Binding(key, f"show_panel('{pid}')", title, show=False) for key, pid, title in PANELS),
    ]

    def __init__(
        self,
        config: WorldConfig,
        world: World | None = None,
        run_engine: bool = True,
        *,
        sandbox_factory: Callable[[World], Awaitable[tuple[Any, str]]] | None = None,
        refresh_s: float = REFRESH_S,
        cursor_blink: bool = True,
        tune_gc: bool = False,
    ) -> None:
        super().__init__()
        self.tune_gc = tune_gc
        self.world = world or World(config, sandbox_factory=sandbox_factory)
        remember_history(self.world)  # agents keep their last actions and freezes for their detail
        self.run_engine = run_engine
        self.refresh_s = refresh_s
        self.cursor_blink_forms = cursor_blink  # snapshot tests turn blinking off
        # Opened on a world that already ran, the app starts from the bus's recent history
        # (the same lines it would have shown), then follows new events.
        self._backlog = [ev for ev in self.world.bus.recent if ev.kind in UI_KINDS]
        self._events = self.world.bus.subscribe(kinds=UI_KINDS, maxlen=2_000)
        self.meter = ActivityMeter()
        self.feed = SandboxFeed()
        self.news = AgentNews()  # each agent's news, for the history in its detail
        self.frames = 0
        self._live = False
        # Every panel exists from the start (the events panel collects lines while hidden),
        # but only the visible one is in the DOM until first shown: a smaller DOM starts
        # faster and restyles faster on every focus change.
        self._panels: dict[str, Panel] = {
            "agents": AgentsPanel(self.meter, id="agents"),
            "containers": ContainersPanel(self.feed, id="containers"),
            "oracle": OraclePanel(id="oracle"),
            "rights": RightsPanel(id="rights"),
            "contracts": ContractsPanel(id="contracts"),
            "events": EventsPanel(id="events"),
            "metrics": MetricsPanel(id="metrics"),
        }

    def compose(self) -> ComposeResult:
        yield WorldHeader(id="header")
        yield PanelTabs(PANELS, id="tabs")
        with ContentSwitcher(initial="agents", id="panels"):
            yield self._panels["agents"]  # the others are mounted when first shown
        yield Footer(compact=True)

    def on_mount(self) -> None:
        # Held once: a frame should not search the DOM for what it already knows.
        self._header = self.query_one(WorldHeader)
        self._tabs = self.query_one(PanelTabs)
        self._switcher = self.query_one("#panels", ContentSwitcher)
        self._events_panel = self._panels["events"]
        self._agents_panel = self._panels["agents"]
        self._header.engine_state = "running" if self.run_engine else "detached"
        self._live = True
        self.refresh_view()
        if self.tune_gc:  # the app is up: out of the collector's way (engine/heap.py)
            heap.settle()
        self.active_panel.focus_main()
        self.set_interval(self.refresh_s, self.refresh_view, name="refresh")
        if self.run_engine:
            self.run_engine_task()

    async def on_unmount(self) -> None:
        self._live = False
        self._events.close()  # the world may outlive the app (tests, benchmarks)

    @work(group="engine", exclusive=True, exit_on_error=False, name="engine")
    async def run_engine_task(self) -> None:
        header = self._header
        # Between two bursts of the world the app's input, timers and screen updates get the
        # event loop for a moment, however busy the world is (engine/scheduler.py).
        self.world.scheduler.pause_seconds = ENGINE_PAUSE_S
        try:
            await self.world.run()
        except Exception as e:
            header.engine_state = "failed"
            self.notify(f"{type(e).__name__}: {e}", title="The engine stopped", severity="error", timeout=30)
            raise
        header.engine_state = "ended"

    # -- panels ---------------------------------------------------------------------------------
    @property
    def active_panel(self) -> Panel:
        return self._switcher.visible_content  # type: ignore[return-value]

    async def action_show_panel(self, panel_id: str) -> None:
        panel = self._panels[panel_id]
        if not panel.is_attached:
            await self._switcher.mount(panel)
        if self._switcher.current != panel_id:
            self._switcher.current = panel_id
            self._tabs.set_active(panel_id)
        panel.refresh_view(self.world, self.world.clock.now())  # no stale frame on arrival
        panel.focus_main()

    def selected(self, kind: str) -> str | None:
        """The selected thing of `kind` in the visible panel (None if it shows none)."""
        return self.active_panel.selected(kind)

    # -- the frame ---------------------------------------------------------------------------------
    def refresh_view(self) -> None:
        """One frame: drain the events, then redraw the header and the visible panel."""
        if not self._live:
            return  # not mounted yet, or shutting down: the widgets may be gone
        self.frames += 1
        world = self.world
        now = world.clock.now()
        events = self._events.drain()
        if self._backlog:
            events, self._backlog = self._backlog + events, []
        try:
            if events:
                self.feed.ingest(events)
                self.news.ingest(events, world.agents)
                lines = []
                for ev in events:
                    line = describe_event(ev)
                    if line is not None:
                        self._events_panel.add(ev.kind, line)
                        lines.append(line)
                self._agents_panel.write_events(lines)
            self.meter.sample(world, now)
            self._header.show(world, now)
            self._tabs.set_badges(badges(world, self.feed.readings(world)))
            self.active_panel.refresh_view(world, now)
        except NoMatches:  # the app is closing and its widgets are being removed
            self._live = False

    @on(LiveTable.Selected)
    def _selection_moved(self, event: LiveTable.Selected) -> None:
        # The wide-screen inspector follows the cursor at once, not at the next frame.
        if self.screen.has_class("-wide") and event.table.id == "agents-table":
            self._agents_panel.refresh_view(self.world, self.world.clock.now())

    # -- details ---------------------------------------------------------------------------------------
    @on(LiveTable.Opened)
    def _open_details(self, event: LiveTable.Opened) -> None:
        table = event.table
        panel = next((p for p in table.ancestors if isinstance(p, Panel)), None)
        kind = panel.SELECTS.get(table.id or "") if panel is not None else None
        if kind:
            self.show_details(kind, event.key)

    def show_details(self, kind: str, key: str) -> None:
        def stats(world: Any, agent_id: str) -> Any:
            return self.feed.readings(world).get(agent_id)

        def per_minute(world: Any) -> Any:
            return self.meter.per_minute(world, key, world.clock.now()) if key in world.agents else None

        renderers: dict[str, tuple[str, Callable[[Any], Any]]] = {
            "agent": (f"Agent {key}", lambda world: agent_detail(
                world, key, world.clock.now(), per_minute(world), stats(world, key), news=self.news)),
            "container": (f"Sandbox of {key}", lambda world: container_detail(
                world, key, stats(world, key), self.feed.incidents)),
            "bid": (f"Bid on {key}", lambda world: bid_detail(world, key, world.clock.now())),
            "resolution": (f"Resolution {key}", lambda world: resolution_detail(
                next(r for r in world.oracle.resolutions if f"#{r['index']}" == key))),
            "config": (f"Config right of {key}", lambda world: config_detail(world, key)),
            "slice": (f"Rate slice {key}", lambda world: slice_detail(world, key)),
            "listing": (f"Listing {key}", lambda world: listing_detail(world, key)),
            "contract": (f"Contract {key}", lambda world: contract_detail(world, key, world.clock.now())),
        }
        title, render = renderers[kind]
        # The world as of each redraw, not the one shown when it opened (a replay's seek
        # puts another in its place), and only while it stands at a moment.
        self.push_screen(DetailScreen(title, lambda: render(self.world), self.refresh_s,
                                      steady=lambda: self.world_is_steady))

    @property
    def world_is_steady(self) -> bool:
        """Does the world shown stand at one moment (so a frame may read it)? Always, live:
        the engine gives the loop its turn only between whole turns. A replay says no while
        it runs the shown world on to the next moment."""
        return True

    def action_agent_history(self) -> None:
        """The history of the agent the selected row names; a choice when it names several
        (a loan's debtor, lender and holder) or none (the events and metrics panels)."""
        world = self.world
        selections = self.active_panel.selections()
        named = agents_named(world, *selections[0]) if selections else []
        if len(named) == 1:
            self.show_details("agent", named[0])
            return
        choices = named or list(world.live_ids)
        scrip = world.ledger.scrip
        hints = {a: f"{world.agents[a].status}, {scrip[a]:,} scrip" for a in choices}

        def check(args: dict[str, Any]) -> Result:
            if args["agent"] in world.agents:
                return Result(True, args["agent"])
            return Result(False, None, f"no agent {args['agent']!r}", "unknown")

        def chosen(result: Result | None) -> None:
            if result is not None:
                self.show_details("agent", result.value)

        self.push_screen(FormScreen(
            "Whose history?", [Field("agent", "agent", "id", named[0] if named else "", choices=choices, closed=True,
                                     hints=hints)],
            check, ok="Show", blink=self.cursor_blink_forms), chosen)

    # -- help ------------------------------------------------------------------------------------------
    def action_help(self) -> None:
        sections = [("Anywhere", binding_rows(b for b in self.BINDINGS if not b.action.startswith("show_panel"))),
                    ("Panels", [(" ".join(k for k, _, _ in PANELS), "switch panel: " +
                                 ", ".join(f"{k} {t}" for k, _, t in PANELS))]),
                    ("Switcher counts", [(title, COUNTS[pid]) for _, pid, title in PANELS if pid in COUNTS])]
        for panel in self._panels.values():
            if panel.BINDINGS:
                sections.append((f"{panel.TITLE} panel", binding_rows(panel.BINDINGS)))
        self.push_screen(HelpScreen(sections))


def run_app(config: WorldConfig, world: World | None = None,
            sandbox_factory: Callable[[World], Awaitable[tuple[Any, str]]] | None = None) -> int:
    """Open the app on `world` (or a new world of `config`) and run it until quit."""
    EcologyApp(config, world=world, sandbox_factory=sandbox_factory, tune_gc=True).run()
    return 0
