"""The panel switcher: one line, `1 Agents 39 live  2 Containers ...` like k9s's views, the
active one highlighted. One row instead of Tabs' two, because at 80x24 every row is data.
Clicking a name switches to it. Each count says what it counts in words when the line has
room, and shorter forms when it has not (tui/panels.py; the help explains each)."""

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
        # panel id -> its count after the title, longest rendering first
        self.badges: dict[str, list[str]] = {}
        self._shown = ""

    def on_mount(self) -> None:
        self._draw()

    def set_active(self, panel_id: str) -> None:
        if panel_id != self.active:
            self.active = panel_id
            self._draw()

    def set_badges(self, badges: dict[str, list[str]]) -> None:
        if badges != self.badges:
            self.badges = badges
            self._draw()

    def _draw(self) -> None:
        width = self.size.width or 80
        tiers = max((len(b) for b in self.badges.values()), default=0)
        for tier in range(tiers + 1):  # the last tier has no counts at all
            text = self._line(tier if tier < tiers else None)
            if text.cell_length <= width:
                break
        if text.markup != self._shown:  # Content equality ignores style: compare markup
            self._shown = text.markup
            self.update(text)

    def _line(self, tier: int | None) -> Content:
        parts = []
        for key, panel_id, title in self.panels:
            active = panel_id == self.active
            forms = self.badges.get(panel_id)
            badge = forms[min(tier, len(forms) - 1)] if forms and tier is not None else None
            label = f" {key} {title}" + (f" {badge}" if badge else "") + " "
            style = "reverse bold" if active else "$text-muted"
            # Content markup carries the click action; Rich Text meta would not reach it.
            parts.append(f"[{style}][@click=app.show_panel('{panel_id}')]{escape(label)}[/][/]")
        return Content.from_markup("".join(parts))

    def on_resize(self) -> None:
        self._draw()
