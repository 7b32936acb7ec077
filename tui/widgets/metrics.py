"""The Metrics panel: charts over the metrics windows (the only ticks left in the world):
scrip supply, minted, compute debt, frozen agents, Gini of scrip, actions per second.
Each chart is a sparkline under a one-line caption with the latest value and the range."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Grid, Vertical
from textual.widgets import Sparkline

from ..format import duration, num
from .line import Line
from .panel import Panel

if TYPE_CHECKING:
    from engine.world import World


def _int(v: float) -> str:
    return num(int(v))


def _two(v: float) -> str:
    return f"{v:,.2f}"


def _three(v: float) -> str:
    return f"{v:.3f}"


# (window field, title, how to print a value)
CHARTS: tuple[tuple[str, str, Callable[[float], str]], ...] = (
    ("scrip_supply", "scrip supply", _int),
    ("minted", "minted per window", _int),
    ("compute_debt", "compute debt", _two),
    ("frozen", "frozen agents", _int),
    ("gini", "Gini of scrip", _three),
    ("actions_per_s", "actions / s", _int),
)


class Chart(Vertical):
    """A caption and a sparkline of one metric."""

    DEFAULT_CSS = """
    Chart { height: 1fr; }
    Chart > Sparkline { height: 1fr; }
    """

    def __init__(self, field: str, title: str, fmt: Callable[[float], str], *, id: str | None = None) -> None:
        super().__init__(id=id, classes="chart")
        self.field = field
        self.title = title
        self.fmt = fmt
        self._last: tuple | None = None

    def compose(self) -> ComposeResult:
        yield Line(classes="chart-caption")
        yield Sparkline([0])

    def show(self, windows: list[dict]) -> None:
        values = [float(w.get(self.field, 0.0)) for w in windows]
        key = (len(values), values[-1] if values else None, values[0] if values else None)
        if key == self._last:
            return  # nothing new: no redraw
        self._last = key
        caption = Text(no_wrap=True, overflow="ellipsis")
        caption.append(self.title, "bold")
        if values:
            caption.append(f"  {self.fmt(values[-1])}", "bold cyan")
            caption.append(f"  {self.fmt(min(values))}–{self.fmt(max(values))}", "dim")
        else:
            caption.append("  no windows yet", "dim")
        self.query_one(".chart-caption", Line).show(caption)
        self.query_one(Sparkline).data = values or [0.0]


class MetricsPanel(Panel):
    TITLE = "Metrics"
    SHOW = 120  # windows charted (each sparkline squeezes them into its width)

    def compose(self) -> ComposeResult:
        yield Line(id="metrics-summary", classes="summary")
        with Grid(id="charts", classes="box"):
            for field, title, fmt in CHARTS:
                yield Chart(field, title, fmt, id=f"chart-{field}")

    def on_mount(self) -> None:
        self.query_one("#charts").border_title = "Metrics windows"

    def refresh_view(self, world: World, now: float) -> None:
        metrics = world.metrics
        windows = list(metrics.windows)[-self.SHOW:]
        for chart in self.query(Chart):
            chart.show(windows)
        inv = world.invariants()
        broken = [k for k, ok in inv.items() if not ok]
        span = (windows[-1]["end"] - windows[0]["start"]) if windows else 0.0
        self.query_one("#metrics-summary", Line).show(Text.assemble(
            ("window ", "dim"), (duration(metrics.interval), "bold"),
            ("  │  charted ", "dim"), (f"{len(windows)} windows ({duration(span)})", ""),
            ("  │  invariants ", "dim"),
            ("all hold", "green") if not broken else ("BROKEN: " + ", ".join(broken), "bold red"),
        ))
