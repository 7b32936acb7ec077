"""Line: one line of text that changes often (a panel's summary, a chart's caption).

A Static's `update` asks for a layout pass, because new content may change its size; a
summary redrawn four times a second never does, so a Line only repaints itself — and only
when its text really changed."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget


class Line(Widget):
    DEFAULT_CSS = """
    Line { height: 1; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.text = Text()

    def show(self, text: Text) -> None:
        if text != self.text or text.style != self.text.style:
            text.no_wrap = True  # one line, cropped with an ellipsis on a narrow terminal
            text.overflow = "ellipsis"
            self.text = text
            self.refresh()

    def render(self) -> Text:
        return self.text


def retitle(box: Widget, title: str | None = None, subtitle: str | None = None) -> None:
    """Set a box's border title and subtitle, touching it only when they change."""
    if title is not None and getattr(box, "_last_title", None) != title:
        box._last_title = title  # type: ignore[attr-defined]
        box.border_title = title
    if subtitle is not None and getattr(box, "_last_subtitle", None) != subtitle:
        box._last_subtitle = subtitle  # type: ignore[attr-defined]
        box.border_subtitle = subtitle
