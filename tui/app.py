"""The Textual app: watch a running world and steer it.

The engine runs as a task on the app's own event loop; the UI never calls into it except
through the operator's invoke path, and redraws from snapshots at a bounded rate
(`REFRESH_S`), updating table cells in place rather than clearing and refilling.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Footer, RichLog, Sparkline, Static

from engine.config import WorldConfig
from engine.events import Event
from engine.world import World

REFRESH_S = 0.25  # UI redraw period: bounded, whatever the engine's event rate
STATUS_STYLE = {
    "thinking": "cyan",
    "acting": "green",
    "sleeping": "dim",
    "frozen": "bold blue",
    "paused": "yellow",
    "crashed": "bold red",
    "stopped": "red",
}
AGENT_COLUMNS = ("agent", "brain", "status", "scrip", "compute", "rate", "actions", "last action")


def describe_event(ev: Event) -> Text | None:
    """One line for the event stream; None for events too frequent to be news."""
    k = ev.kind
    t = f"{ev.t:9.1f}s "
    if k == "scrip_transferred":
        return None  # the circulation itself: shown as totals, not line by line
    if k == "compute_transferred":
        return Text.assemble(t, ("rescue ", "blue"), f"{ev.frm} → {ev.to} {ev.credited:.1f} compute")
    if k == "rate_transferred":
        return Text.assemble(t, ("rate ", "magenta"), f"{ev.frm} → {ev.to} {ev.amount:g}/s")
    if k == "agent_spawned":
        return Text.assemble(t, ("spawn ", "green"), f"{ev.parent} founded {ev.agent_id} ({ev.brain})")
    if k == "agent_status":
        if ev.status == "frozen":
            return None  # frequent for agents paying as they go; the table shows it
        return Text.assemble(t, (ev.status + " ", STATUS_STYLE.get(ev.status, "")), f"{ev.agent_id} {ev.detail}")
    if k == "artifact_written" and ev.created:
        return Text.assemble(t, ("write ", "cyan"), f"{ev.owner} {ev.artifact_id} ({ev.size} B)")
    if k == "config_changed":
        return Text.assemble(t, ("config ", "yellow"), f"{ev.by} changed {ev.agent_id}: {', '.join(ev.changes)}")
    if k == "action_refused":
        return Text.assemble(t, ("refused ", "red"), f"{ev.principal} {ev.action}: {ev.reason}")
    if k == "brain_failed":
        return Text.assemble(t, ("failed ", "red"), f"{ev.agent_id}: {ev.error}")
    if k == "world_control":
        return Text.assemble(t, ("world ", "yellow"), f"{ev.what} {ev.detail}")
    if k == "sandbox_incident":
        return Text.assemble(t, ("sandbox ", "bold red"), f"{ev.agent_id} {ev.failure}: {ev.detail}")
    return None


class WorldHeader(Static):
    """World clock, speed, running or paused, countdown to the oracle, sandbox in use."""

    def show(self, world: World) -> None:
        now = world.clock.now()
        state = Text(" PAUSED ", "black on yellow") if world.paused else Text(" RUNNING ", "black on green")
        speed = "virtual" if world.clock.kind == "virtual" else f"×{world.clock.speed:g}"
        sandbox = getattr(world.sandbox, "name", "none")
        self.update(
            Text.assemble(
                (f" {world.config.name} ", "bold"),
                state,
                f"  {world.clock.wall_time(now)}  t={now:,.1f}s  speed {speed}",
                f"  oracle in {world.next_resolution_in(now):4.0f}s",
                f"  sandbox {sandbox}",
                f"  agents {len(world.live_ids)}  frozen {len(world.frozen)}",
            )
        )


class EcologyApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "Agent Ecology"
    BINDINGS = [
        Binding("space", "toggle_pause", "Pause/Resume"),
        Binding("plus,equals_sign", "faster", "Faster"),
        Binding("minus", "slower", "Slower"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, config: WorldConfig, world: World | None = None, run_engine: bool = True) -> None:
        super().__init__()
        self.world = world or World(config)
        self.run_engine = run_engine
        self._events = self.world.bus.subscribe(maxlen=2_000)
        self._rows: dict[str, tuple] = {}

    def compose(self) -> ComposeResult:
        yield WorldHeader(id="header")
        with Horizontal(id="main"):
            yield DataTable(id="agents", cursor_type="row", zebra_stripes=True)
            with Vertical(id="side"):
                yield Static("actions/s", classes="label")
                yield Sparkline([], id="spark-actions")
                yield Static("scrip Gini", classes="label")
                yield Sparkline([], id="spark-gini")
                yield Static("compute debt", classes="label")
                yield Sparkline([], id="spark-debt")
                yield Static("", id="totals")
                yield RichLog(id="events", max_lines=500, wrap=False, markup=False)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#agents", DataTable)
        for col in AGENT_COLUMNS:
            table.add_column(col, key=col)
        self.refresh_view()
        self.set_interval(REFRESH_S, self.refresh_view)
        if self.run_engine:
            self.run_worker(self.world.run(), name="engine", group="engine", exclusive=True)

    # -- redraw from snapshots ------------------------------------------------------------
    def refresh_view(self) -> None:
        world = self.world
        self.query_one(WorldHeader).show(world)
        self._refresh_agents(world)
        self._refresh_events()
        self._refresh_metrics(world)

    def _refresh_agents(self, world: World) -> None:
        table = self.query_one("#agents", DataTable)
        now = world.clock.now()
        for agent in world.agents.values():
            snap = agent.snapshot(now)
            row = (
                snap["id"],
                snap["brain"],
                Text(snap["status"], STATUS_STYLE.get(snap["status"], "")),
                f"{snap['scrip']:,}",
                Text(f"{snap['compute_balance']:8.2f}", "blue" if snap["compute_balance"] < 0 else ""),
                f"{snap['rate']:g}",
                f"{snap['actions']:,}",
                snap["last_action"],
            )
            old = self._rows.get(agent.id)
            if old is None:
                table.add_row(*row, key=agent.id)
            else:
                for col, before, after in zip(AGENT_COLUMNS, old, row):
                    if str(before) != str(after) or (isinstance(after, Text) and after.style != getattr(before, "style", None)):
                        table.update_cell(agent.id, col, after)
            self._rows[agent.id] = row

    def _refresh_events(self) -> None:
        log = self.query_one("#events", RichLog)
        for ev in self._events.drain():
            line = describe_event(ev)
            if line is not None:
                log.write(line)

    def _refresh_metrics(self, world: World) -> None:
        windows = list(world.metrics.windows)[-60:]
        self.query_one("#spark-actions", Sparkline).data = [w["actions_per_s"] for w in windows] or [0]
        self.query_one("#spark-gini", Sparkline).data = [w["gini"] for w in windows] or [0]
        self.query_one("#spark-debt", Sparkline).data = [w["compute_debt"] for w in windows] or [0]
        ledger = world.ledger
        inv = world.invariants()
        bad = [k for k, ok in inv.items() if not ok]
        self.query_one("#totals", Static).update(
            Text.assemble(
                f"scrip {ledger.scrip_supply:,} (+{ledger.held_total:,} held)  minted {ledger.minted:,}\n",
                f"actions {world.total_actions:,}  refusals {world.waist.refusals:,}\n",
                ("invariants OK" if not bad else "BROKEN: " + ", ".join(bad), "green" if not bad else "bold red"),
            )
        )

    # -- steering: every action goes through the operator's invoke path ------------------
    def _invoke(self, target: str, method: str, **args: Any) -> None:
        result = self.world.invoke(target, method, **args)
        if not result.ok:
            self.notify(result.error or "refused", severity="error")
        self.refresh_view()

    def action_toggle_pause(self) -> None:
        self._invoke("world", "resume" if self.world.paused else "pause")

    def action_faster(self) -> None:
        if self.world.clock.kind == "virtual":
            self.notify("virtual time has no speed", severity="warning")
            return
        self._invoke("world", "set_speed", speed=min(self.world.clock.speed * 2, 1024.0))

    def action_slower(self) -> None:
        if self.world.clock.kind == "virtual":
            self.notify("virtual time has no speed", severity="warning")
            return
        self._invoke("world", "set_speed", speed=max(self.world.clock.speed / 2, 1 / 64))


def run_app(config: WorldConfig) -> int:
    EcologyApp(config).run()
    return 0
