"""Line: one line of text that changes often (a panel's summary, a chart's caption).

A Static's `update` asks for a layout pass, because new content may change its size; a
summary redrawn four times a second never does, so a Line only repaints itself — and only
when its text really changed."""

from __future__ import annotations

from weakref import WeakKeyDictionary

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


# The title and subtitle each box was last given, kept here rather than on the box itself:
# a box's border title setter refreshes it even when the text is the same.
_TITLES: WeakKeyDictionary[Widget, tuple[str | None, str | None]] = WeakKeyDictionary()


def retitle(box: Widget, title: str | None = None, subtitle: str | None = None) -> None:
    """Set a box's border title and subtitle, touching it only when they change."""
    last_title, last_subtitle = _TITLES.get(box, (None, None))
    if title is not None and last_title != title:
        box.border_title = last_title = title
    if subtitle is not None and last_subtitle != subtitle:
        box.border_subtitle = last_subtitle = subtitle
    _TITLES[box] = (last_title, last_subtitle)
