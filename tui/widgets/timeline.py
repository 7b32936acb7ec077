"""The replay's timeline: where the position is in the recording, and what happened when.

Two lines: a bar the width of the screen (checkpoint ticks, operator actions, resolutions
and defaults marked where they fall, the position as a block) and a line of figures (the
position, the recording's length, the checkpoint, play state and speed, and whether the
world shown is exact).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.text import Text
from textual.widget import Widget

# What a mark looks like, most important last (a later kind overwrites an earlier one).
MARKS = (("checkpoint", "┊", "dim"), ("resolution", "◆", "cyan"), ("default", "✕", "red"),
         ("operator", "▲", "yellow"))


def clock(t: float) -> str:
    h, rest = divmod(int(t), 3600)
    m, s = divmod(rest, 60)
    return f"{h:02d}:{m:02d}:{s:02d}"


@dataclass
class TimelineState:
    start: float = 0.0
    end: float = 0.0
    t: float = 0.0
    checkpoint: int = 0
    checkpoints: int = 0
    playing: bool = False
    speed: float = 10.0
    exact: bool = True
    live: bool = False  # the journal is still being written
    marks: dict[str, list[float]] = field(default_factory=dict)


class Timeline(Widget):
    DEFAULT_CSS = """
    Timeline {
        height: 2;
        padding: 0 1;
        background: $boost;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.state = TimelineState()

    def show(self, state: TimelineState) -> None:
        self.state = state
        self.refresh()

    def render(self) -> Text:
        s = self.state
        width = max(10, self.size.width - 2)
        span = max(s.end - s.start, 1e-9)

        def col(t: float) -> int:
            return min(width - 1, max(0, int((t - s.start) / span * (width - 1) + 0.5)))

        cells = [("─", "dim")] * width
        for kind, char, style in MARKS:
            for t in s.marks.get(kind, ()):
                if s.start <= t <= s.end:
                    cells[col(t)] = (char, style)
        cells[col(s.t)] = ("█", "bold green")
        bar = Text.assemble(*cells)
        state = "▶ playing" if s.playing else "❚❚ paused"
        figures = Text.assemble(
            (f"T+{clock(s.t)}", "bold"), (f" / {clock(s.end)}", "dim"),
            ("   checkpoint ", "dim"), (f"{s.checkpoint + 1}/{s.checkpoints}", ""),
            ("   ", ""), (state, "green" if s.playing else ""), (f" ×{s.speed:g}", "dim"),
            ("   exact" if s.exact else "   as of the checkpoint before (real-time recording)",
             "dim" if s.exact else "yellow"),
            ("   following a journal being written" if s.live else "", "dim"),
            ("   , . event  [ ] checkpoint  < > minute  space play  j jump  { } first/last  F fork", "dim"),
        )
        figures.truncate(width + 2)
        return Text("\n").join([bar, figures])
