"""The panel switcher: one line, `1 Agents  2 Containers ...` like k9s's views, the active
one highlighted. One row instead of Tabs' two, because at 80x24 every row is data.
Clicking a name switches to it."""

from __future__ import annotations

from collections.abc import Sequence

from textual.content import Content
from textual.markup import escape
from textual.widgets import Static


class PanelTabs(Static):
    DEFAULT_CSS = """
    PanelTabs { height: 1; link-style: none; link-style-hover: bold; link-background-hover: $boost; }
    """

    def __init__(self, panels: Sequence[tuple[str, str, str]], *, id: str | None = None) -> None:
        """`panels`: (key, panel id, title) in display order."""
        super().__init__(id=id)
        self.panels = list(panels)
        self.active = self.panels[0][1]
        self.badges: dict[str, str] = {}  # panel id -> a short count shown after its title
        self._shown = ""

    def on_mount(self) -> None:
        self._draw()

    def set_active(self, panel_id: str) -> None:
        if panel_id != self.active:
            self.active = panel_id
            self._draw()

    def set_badges(self, badges: dict[str, str]) -> None:
        if badges != self.badges:
            self.badges = badges
            self._draw()

    def _draw(self) -> None:
        width = self.size.width or 80
        text = self._line(with_badges=True)
        if text.cell_length > width:
            text = self._line(with_badges=False)
        if text.markup != self._shown:  # Content equality ignores style: compare markup
            self._shown = text.markup
            self.update(text)

    def _line(self, with_badges: bool) -> Content:
        parts = []
        for key, panel_id, title in self.panels:
            active = panel_id == self.active
            badge = self.badges.get(panel_id) if with_badges else None
            label = f" {key} {title}" + (f" {badge}" if badge else "") + " "
            style = "reverse bold" if active else "$text-muted"
            # Content markup carries the click action; Rich Text meta would not reach it.
            parts.append(f"[{style}][@click=app.show_panel('{panel_id}')]{escape(label)}[/][/]")
        return Content.from_markup("".join(parts))

    def on_resize(self) -> None:
        self._draw()
