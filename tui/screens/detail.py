"""DetailScreen: everything about one selected thing (an agent, a container, a bid, a
resolution, a right, a listing, a contract), redrawn at the app's refresh rate while open
so a frozen agent visibly thaws and a loan's history grows."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from rich.console import RenderableType
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


class DetailScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,enter,q", "close", "Close"),
    ]

    def __init__(self, title: str, render: Callable[[], RenderableType], refresh_s: float,
                 steady: Callable[[], bool] = lambda: True) -> None:
        super().__init__()
        self.title_text = title
        self.render_detail = render
        self.refresh_s = refresh_s
        self.steady = steady  # False while what it shows is between two moments: the last drawing stands

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="detail") as box:
            box.border_title = self.title_text
            box.border_subtitle = "esc: close"
            yield Static(id="detail-body")

    def on_mount(self) -> None:
        self.redraw()
        self.set_interval(self.refresh_s, self.redraw)
        self.query_one("#detail").focus()

    def redraw(self) -> None:
        if not self.steady():
            return
        try:
            body = self.render_detail()
        except Exception as e:  # noqa: BLE001 - a detail must never take the app down
            body = Text(f"cannot show this: {type(e).__name__}: {e}", "red")
        self.query_one("#detail-body", Static).update(body)

    def action_close(self) -> None:
        self.dismiss(None)
