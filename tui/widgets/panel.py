"""What every panel shares: a title, a refresh from the world at the app's bounded rate,
and a way to say what is selected (so keys and palette commands act on it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual.containers import Vertical

from .live_table import LiveTable

if TYPE_CHECKING:
    from engine.world import World


class Panel(Vertical):
    """One view of the world. Hidden panels are not refreshed: a frame costs one panel."""

    TITLE: ClassVar[str] = ""
    # Kinds of thing a panel's tables select, by table id: "agent", "bid", "contract", ...
    SELECTS: ClassVar[dict[str, str]] = {}

    def refresh_view(self, world: World, now: float) -> None:
        raise NotImplementedError

    def selected(self, kind: str) -> str | None:
        """The id of the selected thing of `kind`, if a table of that kind has the cursor
        (the focused one first, then any)."""
        tables = [t for t in self.query(LiveTable) if self.SELECTS.get(t.id or "") == kind]
        tables.sort(key=lambda t: not t.has_focus)
        for table in tables:
            key = table.selected_key
            if key is not None:
                return key
        return None

    def selections(self) -> list[tuple[str, str]]:
        """(kind, id) of every table's selected row, the focused table's first."""
        tables = sorted(self.query(LiveTable), key=lambda t: not t.has_focus)
        return [(self.SELECTS[t.id], t.selected_key) for t in tables
                if t.id in self.SELECTS and t.selected_key is not None]

    def focus_main(self) -> None:
        tables = list(self.query(LiveTable))
        if tables and not any(t.has_focus for t in tables):
            tables[0].focus()
        elif not tables and self.can_focus:
            self.focus()  # a panel without tables takes the focus itself, so its keys work
