"""The Metrics panel: line charts over the metrics windows, read at a glance.

Every chart has a world-time x axis and y axes from zero with their units, so eighteen
frozen agents never look like none. Series that belong together share a chart (supply and
minted; compute debt with frozen agents on a right-hand axis; Gini with the richest
tenth's share; loans defaulted and repaid). A key switches the span every chart follows:
the last 10 minutes, the last hour, or every window in memory.

Charts are drawn by plotext through textual-plotext (see the README's dependency table).
A plotext chart costs milliseconds to build, so: a chart is rebuilt only when a window
closes or the span or size changes (a closed window never changes); a series is thinned
to the points its width can show (the lowest and highest of each column's windows, so a
spike survives); and a frame rebuilds at most `BUDGET` charts, the stalest first, at most
every `GAP` real seconds, unless the panel is shown for the first time or its span
changed. A chart keeps the picture plotext built and shows it again until its data or
size change, so showing the panel again costs no builds. A fast world (virtual time, high
speed) closes windows every frame; its charts then catch up in turn, never all at once.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid
from textual.widgets import Static
from textual_plotext import PlotextPlot

from ..format import duration, num, world_t
from .line import Line
from .panel import Panel

if TYPE_CHECKING:
    from engine.world import World


RGB = tuple[int, int, int]
CYAN: RGB = (80, 200, 220)
GREEN: RGB = (120, 200, 80)
BLUE: RGB = (100, 140, 255)
MAGENTA: RGB = (220, 110, 220)
YELLOW: RGB = (230, 190, 60)
RED: RGB = (235, 85, 85)


@dataclass(frozen=True)
class Series:
    field: str  # the window's field
    label: str
    color: RGB
    fmt: Callable[[float], str]
    side: Literal["left", "right"] = "left"
    whole: bool = False  # a count: its axis ticks are whole numbers


@dataclass(frozen=True)
class ChartSpec:
    id: str
    title: str  # with the unit of each axis
    series: tuple[Series, ...]
    top: float | None = None  # a fixed top for the y axis (shares: 1)


def _int(v: float) -> str:
    return num(round(v))


def _two(v: float) -> str:
    return f"{v:,.2f}"


def _three(v: float) -> str:
    return f"{v:.3f}"


def _dollars(v: float) -> str:
    return f"${v:,.2f}"


CHARTS: tuple[ChartSpec, ...] = (
    ChartSpec("scrip", "Scrip supply · minted ever", (
        Series("scrip_supply", "supply", CYAN, _int, whole=True),
        Series("minted_total", "minted", GREEN, _int, whole=True),
    )),
    ChartSpec("debt", "Compute debt · frozen agents →", (
        Series("compute_debt", "debt", BLUE, _two),
        Series("frozen", "frozen →", MAGENTA, _int, side="right", whole=True),
    )),
    ChartSpec("activity", "Actions per second", (
        Series("actions_per_s", "actions/s", GREEN, _int),
    )),
    ChartSpec("inequality", "Inequality of scrip (0–1)", (
        Series("gini", "Gini", YELLOW, _three),
        Series("top10_share", "top 10% hold", RED, _three),
    ), top=1.0),
    ChartSpec("velocity", "Velocity: moved ÷ supply", (
        Series("velocity", "velocity", CYAN, _three),
    )),
    ChartSpec("minting", "Minted per hour", (
        Series("minted_per_hour", "minted/h", GREEN, _int),
    )),
    ChartSpec("loans", "Loans settled per window", (
        Series("repayments", "repaid", GREEN, _int, whole=True),
        Series("defaults", "defaulted", RED, _int, whole=True),
    )),
    ChartSpec("llm", "LLM dollars spent, ever", (
        Series("llm_spent", "spent", YELLOW, _dollars),
    )),
)

BUDGET = 2  # charts rebuilt per frame while the panel stays in view...
GAP = 0.5  # ...and at most every GAP real seconds (a fast world closes windows every frame)

# The spans a chart can follow: (name, world seconds; None for every window kept).
SPANS: tuple[tuple[str, float | None], ...] = (("10 min", 600.0), ("1 hour", 3600.0), ("all", None))


def y_axis(largest: float, ticks: int, whole: bool = False, top: float | None = None) -> list[float]:
    """Ticks for a y axis from zero, at most `ticks` steps of a round size (1, 2, 2.5 or
    5 × 10^k; whole numbers for counts): of the steps that reach `largest` in that many,
    the one with the lowest top, so the data fills the chart. An all-zero series still
    gets an axis (0 to 1)."""
    ticks = max(1, ticks)
    if top is not None:
        largest = top  # a fixed top (a share's 1): round steps up to it
    if not (largest > 0 and math.isfinite(largest)):
        return [0.0, 1.0]
    exp = math.floor(math.log10(largest / ticks))
    best: tuple[float, float] | None = None  # (top, step)
    for e in (exp, exp + 1):
        for c in (1.0, 2.0, 2.5, 5.0):
            step = c * 10.0**e
            if whole and step != int(step):
                continue
            n = max(1, math.ceil(largest / step - 1e-9))
            if n <= ticks and (best is None or n * step < best[0]):
                best = (n * step, step)
    top_, step = best if best is not None else (10.0 ** (exp + 2), 10.0 ** (exp + 2))
    n = round(top_ / step)
    return [step * i for i in range(n + 1)]


def tick_label(v: float, step: float) -> str:
    """Short y-axis labels: 0, 2.5, 1.2k, 3M; as many decimals as the step needs."""
    if v == 0:
        return "0"
    if abs(v) >= 1_000_000:
        return f"{v / 1_000_000:g}M"
    if abs(v) >= 10_000:
        return f"{v / 1_000:g}k"
    if step >= 1:
        return f"{v:g}"
    decimals = max(0, -math.floor(math.log10(step)) + (1 if round(step / 10 ** math.floor(math.log10(step)), 6) == 2.5 else 0))
    return f"{v:.{decimals}f}"


def time_ticks(x0: float, x1: float, count: int) -> list[float]:
    """World-time ticks on round steps (10 s … 1 day) spanning [x0, x1]."""
    span = max(x1 - x0, 1e-9)
    steps = (10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 21600, 43200, 86400)
    step = next((s for s in steps if span / s <= count), steps[-1])
    first = math.ceil(x0 / step) * step
    return [first + i * step for i in range(int((x1 - first) // step) + 1)]


def thin(xs: Sequence[float], ys: Sequence[float], columns: int) -> tuple[list[float], list[float]]:
    """At most two points per column: each column's lowest and highest, in time order.
    A line through them looks as the full series would at this width."""
    n = len(xs)
    if n <= 2 * max(1, columns):
        return list(xs), list(ys)
    out_x: list[float] = []
    out_y: list[float] = []
    per = n / columns
    for c in range(columns):
        lo, hi = int(c * per), min(n, int((c + 1) * per))
        if lo >= hi:
            continue
        low = min(range(lo, hi), key=ys.__getitem__)
        high = max(range(lo, hi), key=ys.__getitem__)
        for i in sorted({low, high}):
            out_x.append(xs[i])
            out_y.append(ys[i])
    return out_x, out_y


def _rgb(color: RGB) -> str:
    return "#{:02x}{:02x}{:02x}".format(*color)


class Chart(PlotextPlot):
    """One chart in a titled box: the plot with its axes; the box's bottom edge is the
    legend, with each series' latest value."""

    DEFAULT_CSS = """
    Chart { height: 1fr; width: 1fr; }
    """

    def __init__(self, spec: ChartSpec) -> None:
        super().__init__(id=f"chart-{spec.id}", classes="chart box")
        self.spec = spec
        self._key: tuple | None = None
        self._picture: tuple[tuple, Text] | None = None  # the last plot built, and for what

    def render(self) -> Text:
        """The plot, built by plotext only when its data, size or theme changed: Textual
        renders a widget again whenever it is shown, and a build costs tens of milliseconds."""
        key = (self._key, self.size.width, self.size.height, self.app.theme)
        if self._picture is None or self._picture[0] != key:
            self._picture = (key, super().render())
        return self._picture[1].copy()

    def on_mount(self) -> None:
        self.border_title = self.spec.title

    def on_resize(self) -> None:
        shown = getattr(self, "_shown", None)
        if shown is not None:
            self.show(*shown)  # the ticks and thinning follow the size

    def stale(self, windows: Sequence[dict[str, Any]], x0: float, x1: float) -> bool:
        return self._key != self._key_for(windows, x0, x1)

    def _key_for(self, windows: Sequence[dict[str, Any]], x0: float, x1: float) -> tuple:
        return (len(windows), windows[-1]["index"] if windows else None, x0, x1, self.size.height, self.size.width)

    def show(self, windows: Sequence[dict[str, Any]], x0: float, x1: float) -> bool:
        """Rebuild the chart if what it shows changed; say whether it did."""
        self._shown = (windows, x0, x1)
        key = self._key_for(windows, x0, x1)
        if key == self._key:
            return False  # nothing new: no rebuild
        self._key = key
        self.border_subtitle = self.legend(windows)
        self._draw(windows, x0, x1)
        return True

    def legend(self, windows: Sequence[dict[str, Any]]) -> str:
        parts = []
        for s in self.spec.series:
            value = f" [b]{s.fmt(float(windows[-1].get(s.field, 0.0)))}[/b]" if windows else ""
            parts.append(f"[{_rgb(s.color)}]━[/] {s.label}{value}")
        return "  ".join(parts) if windows else "no windows yet"

    def _draw(self, windows: Sequence[dict[str, Any]], x0: float, x1: float) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        spec = self.spec
        xs = [float(w["end"]) for w in windows]
        if x1 <= x0:
            x1 = x0 + 1.0
        # Rows for the canvas: the box's inside less the plot's frame and the time axis; a
        # tick every third row at most, so labels never crowd (plotext rounds their rows).
        rows = max(1, self.size.height - 3)
        ticks = max(1, min(4, rows // 3))
        for side in ("left", "right"):
            series = [s for s in spec.series if s.side == side]
            if not series:
                continue
            largest = max((float(w.get(s.field, 0.0)) for s in series for w in windows), default=0.0)
            yt = y_axis(largest, ticks, whole=all(s.whole for s in series), top=spec.top)
            step = yt[1] - yt[0] if len(yt) > 1 else 1.0
            plt.ylim(0.0, yt[-1], yside=side)
            plt.yticks(yt, [tick_label(v, step) for v in yt], yside=side)
            columns = max(1, self.size.width - 8)  # the canvas, less the y axes' labels
            for s in series:
                if xs:
                    px, py = thin(xs, [float(w.get(s.field, 0.0)) for w in windows], columns)
                    plt.plot(px, py, color=s.color, marker="braille", yside=side)
        plt.xlim(x0, x1)
        xt = time_ticks(x0, x1, max(2, self.size.width // 12))
        plt.xticks(xt, [world_t(t) for t in xt])
        self.refresh()


def latest_window(window: dict[str, Any] | None, interval: float) -> RenderableType:
    """The last closed window in numbers: what the charts end on, exactly."""
    if window is None:
        return Text("no window has closed yet", "dim")
    table = Table.grid(padding=(0, 1))
    table.add_column(style="dim", justify="right", no_wrap=True)
    table.add_column(no_wrap=True, overflow="ellipsis")
    rows = (
        ("window", f"#{window['index']}, {world_t(window['start'])}–{world_t(window['end'])}"),
        ("agents", f"{num(window['agents'])}, {num(window['frozen'])} frozen"),
        ("actions", f"{num(window['actions'])} ({window['actions_per_s']:,.1f}/s)"),
        ("scrip moved", f"{num(window.get('moved', 0))} of {num(window['scrip_supply'])}"),
        ("minted", f"{num(window['minted'])} (ever {num(window['minted_total'])})"),
        ("loans", f"{window.get('repayments', 0)} repaid, {window.get('defaults', 0)} defaulted"),
        ("LLM", f"${window.get('llm_dollars', 0.0):,.2f} (ever ${window.get('llm_spent', 0.0):,.2f})"),
        ("invariants", Text("held", "green") if window["invariants_ok"] else Text("BROKEN", "bold red")),
    )
    for label, value in rows:
        table.add_row(label, value)
    return table


class LatestWindow(Static):
    """The ninth cell of the grid: the latest window's figures."""

    def __init__(self) -> None:
        super().__init__(id="latest-window", classes="box")
        self._index: int | None = -1

    def on_mount(self) -> None:
        self.border_title = "Latest window"

    def show(self, window: dict[str, Any] | None, interval: float) -> None:
        index = None if window is None else window["index"]
        if index != self._index:
            self._index = index
            self.update(latest_window(window, interval))


class MetricsPanel(Panel):
    TITLE = "Metrics"
    BINDINGS: ClassVar = [Binding("w", "cycle_span", "Span: 10 min, 1 hour, all")]
    can_focus = True  # no table here: the panel itself holds the focus, for its keys

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.span = 0  # index into SPANS
        self._all_now = True  # shown, or the span changed: every chart at once
        self._builds = 0
        self._last_round = 0.0  # time.monotonic() of the last budgeted rebuild

    def on_show(self) -> None:
        # Shown again: the charts keep their pictures and catch up in turn like a running
        # panel does, so the key that shows the panel is not held up by eight plot builds.
        # The first time, every chart is built at once (there is nothing to show yet).
        self._all_now = self._builds == 0

    def compose(self) -> ComposeResult:
        yield Line(id="metrics-summary", classes="summary")
        with Grid(id="charts"):
            for spec in CHARTS:
                yield Chart(spec)
            yield LatestWindow()

    def action_cycle_span(self) -> None:
        self.span = (self.span + 1) % len(SPANS)
        self._all_now = True
        world = self.app.world  # type: ignore[attr-defined]
        self.refresh_view(world, world.clock.now())

    def span_name(self) -> str:
        return SPANS[self.span][0]

    def charted(self, world: World) -> tuple[list[dict[str, Any]], float, float]:
        """The windows the charts show, and the x range: the last span of world time up to
        the latest window (never before the world began), or every window kept."""
        windows = list(world.metrics.windows)
        if not windows:
            return [], 0.0, 1.0
        end = float(windows[-1]["end"])
        seconds = SPANS[self.span][1]
        if seconds is None:
            return windows, float(windows[0]["start"]), end
        x0 = max(0.0, end - seconds, float(windows[0]["start"]))
        return [w for w in windows if w["end"] >= x0], x0, end

    def refresh_view(self, world: World, now: float) -> None:
        metrics = world.metrics
        windows, x0, x1 = self.charted(world)
        # The stalest first (query order is grid order; a rebuilt chart goes to the back).
        stale = [c for c in self.query(Chart) if c.stale(windows, x0, x1)]
        stale.sort(key=lambda c: getattr(c, "built_at", 0))
        clock = time.monotonic()
        if self._all_now:
            budget = len(stale)
        else:
            budget = BUDGET if clock - self._last_round >= GAP else 0
        if stale and budget:
            self._last_round = clock
        self._all_now = False
        for chart in stale[:budget]:
            chart.show(windows, x0, x1)
            self._builds += 1
            chart.built_at = self._builds
        self.query_one(LatestWindow).show(metrics.windows[-1] if metrics.windows else None, metrics.interval)
        inv = world.invariants()
        broken = [k for k, ok in inv.items() if not ok]
        self.query_one("#metrics-summary", Line).show(Text.assemble(
            ("span ", "dim"), (self.span_name(), "bold"), (" (w)", "dim"),
            ("  │  ", "dim"), (f"{len(windows)} windows of {duration(metrics.interval)}", ""),
            (f", {world_t(x0)}–{world_t(x1)}", "dim"),
            ("  │  invariants ", "dim"),
            ("all hold", "green") if not broken else ("BROKEN: " + ", ".join(broken), "bold red"),
        ))
