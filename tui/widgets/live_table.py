"""LiveTable: a keyed, row-cursor table updated in place, drawn with Textual's line API.

Why not DataTable: any cell update there invalidates the render cache of every cell, and
a cell costs a Rich render of its own, so a thousand live agents cost ~70 ms per frame at
120x36. Here a row is one Rich line, rendered once per change and cached by row key; a
frame re-renders only rows whose values changed, and only the rows on screen are drawn.

Why not clear-and-refill: that resets cursor and scroll and rebuilds everything. Panels
say which keys exist and in what order (`set_keys`), then hand over fresh values for some
rows (`update_rows`); the selected row stays selected when the order changes. A panel with
a thousand rows refreshes the rows on screen every frame and the rest in rolling chunks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.cells import cell_len, set_cell_size
from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

PAD = 1  # cells of padding on each side of a column


@dataclass(frozen=True, slots=True)
class Col:
    key: str
    label: str
    width: int  # fixed: columns never jump as values change
    justify: str = "left"


def _fit(text: str, col: Col) -> str:
    """Crop (with an ellipsis) or pad a cell's text to its column's width."""
    length = cell_len(text)
    if length > col.width:
        return set_cell_size(text, col.width - 1) + "…"
    gap = " " * (col.width - length)
    return gap + text if col.justify == "right" else text + gap


def _cell_segments(value: Any, col: Col, console: Console) -> list[Segment]:
    """A cell as segments. Plain strings and one-style Text (nearly every cell) skip Rich's
    renderer: a row is built in microseconds, which is what lets a re-sorted thousand-row
    table redraw within a frame."""
    if isinstance(value, Text):
        if not value.spans:
            style = value.style
            return [Segment(_fit(value.plain, col), Style.parse(style) if isinstance(style, str) else style)]
        text = value.copy()
        text.no_wrap = True
        text.end = ""
        text.truncate(col.width, overflow="ellipsis")
        if col.justify == "right":
            text.pad_left(col.width - text.cell_len)
        else:
            text.pad_right(col.width - text.cell_len)
        return list(text.render(console))
    return [Segment(_fit(str(value), col))]


def _same(a: Any, b: Any) -> bool:
    """Cell equality that sees style changes (a status turning red)."""
    if isinstance(a, Text) and isinstance(b, Text):
        return a.plain == b.plain and a.style == b.style and a.spans == b.spans
    return a == b


class LiveTable(ScrollView, can_focus=True):
    """Rows identified by the domain's ids; a header that stays put; one cursor row."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "live-table--header", "live-table--cursor", "live-table--even-row",
    }
    DEFAULT_CSS = """
    LiveTable {
        height: 1fr;
        background: transparent;
        & > .live-table--header { text-style: bold; color: $text-muted; }
        & > .live-table--even-row { background: $surface-lighten-1 40%; }
        & > .live-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        &:focus > .live-table--cursor {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
            text-style: $block-cursor-text-style;
        }
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "cursor_to(0)", "First", show=False),
        Binding("end", "cursor_to(-1)", "Last", show=False),
        Binding("left", "scroll_columns(-1)", "Scroll left", show=False),
        Binding("right", "scroll_columns(1)", "Scroll right", show=False),
        Binding("enter", "open", "Details", show=False),
    ]

    class Selected(Message):
        """The cursor moved to another row. Bursts (a held arrow key) collapse into the
        newest one: only where the cursor ends up matters."""

        def __init__(self, table: LiveTable, key: str | None) -> None:
            super().__init__()
            self.table = table
            self.key = key

        @property
        def control(self) -> LiveTable:
            return self.table

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, LiveTable.Selected) and message.table is self.table

    class Opened(Message):
        """Enter (or a click on the selected row): show this row's details."""

        def __init__(self, table: LiveTable, key: str) -> None:
            super().__init__()
            self.table = table
            self.key = key

        @property
        def control(self) -> LiveTable:
            return self.table

    def __init__(self, columns: Sequence[Col], *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.cols = tuple(columns)
        self._values: dict[str, tuple] = {}  # what each row shows, by key
        self._order: list[str] = []
        self._index: dict[str, int] = {}
        self._lines: dict[str, Strip] = {}  # rendered rows, dropped when a value changes
        self._header: Strip | None = None
        self._roll = 0  # where the next rolling chunk of off-screen rows starts
        self.cursor_row = 0
        self.row_width = sum(c.width + 2 * PAD for c in self.cols)

    def on_mount(self) -> None:
        self._resize()

    # -- structure -----------------------------------------------------------------------------
    def set_keys(self, keys: Sequence[str]) -> bool:
        """Make the rows exactly `keys`, in that order. A new row shows its key and blanks
        until `update_rows` fills it. Returns whether anything changed."""
        keys = list(keys)
        if keys == self._order:
            return False
        selected = self.selected_key
        wanted = set(keys)
        for key in [k for k in self._order if k not in wanted]:
            del self._values[key]
            self._lines.pop(key, None)
        for key in keys:
            if key not in self._values:
                self._values[key] = (key,) + ("",) * (len(self.cols) - 1)
        self._order = keys
        self._index = {k: i for i, k in enumerate(keys)}
        self._resize()
        if selected is not None and selected in self._index:
            self.cursor_row = self._index[selected]  # the same thing stays selected
        self._clamp_cursor()
        self.refresh()
        return True

    def _resize(self) -> None:
        self.virtual_size = Size(self.row_width, len(self._order) + 1)  # +1: the header

    # -- values --------------------------------------------------------------------------------
    def update_rows(self, rows: Iterable[tuple[str, tuple]]) -> int:
        """Put new values in; a row is re-rendered only if one of its cells changed.
        Returns the number of rows changed."""
        changed = 0
        values = self._values
        for key, row in rows:
            old = values.get(key)
            if old is None:
                continue
            if len(old) == len(row) and all(_same(a, b) for a, b in zip(old, row)):
                continue
            values[key] = row
            self._lines.pop(key, None)
            changed += 1
        if changed:
            self.refresh()
        return changed

    @property
    def keys_in_order(self) -> list[str]:
        return self._order

    def visible_keys(self, margin: int = 2) -> list[str]:
        """Keys of the rows on screen now (plus a small margin for smooth scrolling)."""
        if not self._order:
            return []
        top = max(0, int(self.scroll_y) - margin)
        height = max(1, self.size.height) + 2 * margin
        return self._order[top: top + height]

    def rolling_keys(self, count: int) -> list[str]:
        """The next `count` keys in a round-robin over every row: off-screen rows stay
        fresh enough for sorting and scrolling without being rebuilt every frame."""
        n = len(self._order)
        if not n:
            return []
        start = self._roll % n
        self._roll = start + count
        return [self._order[(start + i) % n] for i in range(min(count, n))]

    # -- drawing -------------------------------------------------------------------------------
    def _row_strip(self, key: str) -> Strip:
        strip = self._lines.get(key)
        if strip is None:
            strip = self._render_cells(self._values[key])
            self._lines[key] = strip
        return strip

    def _render_cells(self, cells: Sequence[Any]) -> Strip:
        console = self.app.console
        pad = Segment(" " * PAD)
        segments: list[Segment] = []
        for value, col in zip(cells, self.cols):
            segments.append(pad)
            segments.extend(_cell_segments(value, col, console))
            segments.append(pad)
        return Strip(segments, self.row_width)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        base = self.rich_style
        if y == 0:
            if self._header is None:
                self._header = self._render_cells([Text(c.label) for c in self.cols])
            style = base + self.get_component_rich_style("live-table--header")
            strip = Strip(Segment.apply_style(list(self._header), post_style=style), self._header.cell_length)
            return self._window(strip, scroll_x, width, style)
        row = scroll_y + y - 1
        if row >= len(self._order):
            return Strip.blank(width, base)
        strip = self._row_strip(self._order[row])
        if row == self.cursor_row:
            style = base + self.get_component_rich_style("live-table--cursor")
            strip = Strip(Segment.apply_style(list(strip), post_style=style), strip.cell_length)
        else:
            style = base + self.get_component_rich_style("live-table--even-row") if row % 2 else base
            strip = strip.apply_style(style)
        return self._window(strip, scroll_x, width, style)

    def _window(self, strip: Strip, scroll_x: int, width: int, style: Style) -> Strip:
        """The visible part of a row. Scrolled sideways, the first column (the row's id)
        stays put, as in k9s: a row whose name scrolled away would mean nothing."""
        if scroll_x <= 0:
            return strip.crop_extend(0, width, style)
        fixed = self.cols[0].width + 2 * PAD
        return Strip.join([
            strip.crop(0, fixed),
            strip.crop_extend(fixed + scroll_x, fixed + scroll_x + max(0, width - fixed), style),
        ])

    def on_focus(self) -> None:
        # The box around the focused table lights up (cheaper than CSS :focus-within,
        # which restyles every ancestor on every focus change).
        if self.parent is not None:
            self.parent.add_class("-focused")

    def on_blur(self) -> None:
        if self.parent is not None:
            self.parent.remove_class("-focused")

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self.refresh()  # theme or focus changed: header and cursor styles with it

    # -- the cursor ----------------------------------------------------------------------------
    @property
    def selected_key(self) -> str | None:
        if not self._order:
            return None
        return self._order[min(self.cursor_row, len(self._order) - 1)]

    def select(self, key: str) -> None:
        index = self._index.get(key)
        if index is not None:
            self._move(index)

    def _clamp_cursor(self) -> None:
        self.cursor_row = max(0, min(self.cursor_row, len(self._order) - 1))

    def _move(self, row: int) -> None:
        if not self._order:
            return
        row = max(0, min(row, len(self._order) - 1))
        before = self.cursor_row
        self.cursor_row = row
        # Keep the cursor in view (the header takes the first line).
        visible = max(1, self.size.height - 1)
        if row < self.scroll_y:
            self.scroll_to(y=row, animate=False, immediate=True)
        elif row >= self.scroll_y + visible:
            self.scroll_to(y=row - visible + 1, animate=False, immediate=True)
        if row != before:
            self.refresh()
            self.post_message(self.Selected(self, self.selected_key))

    def action_cursor(self, delta: int) -> None:
        self._move(self.cursor_row + delta)

    def action_page(self, direction: int) -> None:
        self._move(self.cursor_row + direction * max(1, self.size.height - 2))

    def action_cursor_to(self, row: int) -> None:
        self._move(row if row >= 0 else len(self._order) - 1)

    def action_scroll_columns(self, direction: int) -> None:
        """Narrow terminals: bring the columns beyond the edge into view, a column at a time."""
        edges = [0]
        for col in self.cols:
            edges.append(edges[-1] + col.width + 2 * PAD)
        x = int(self.scroll_x)
        if direction > 0:
            target = next((e for e in edges if e > x), x)
        else:
            target = next((e for e in reversed(edges) if e < x), 0)
        self.scroll_to(x=target, animate=False)

    def action_open(self) -> None:
        key = self.selected_key
        if key is not None:
            self.post_message(self.Opened(self, key))

    def on_click(self, event: events.Click) -> None:
        if event.y == 0:
            return  # the header
        row = int(self.scroll_y) + event.y - 1
        if 0 <= row < len(self._order):
            if row == self.cursor_row:
                self.action_open()
            else:
                self._move(row)
