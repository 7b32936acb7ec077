"""HelpScreen: every key, built from the bindings themselves (so it cannot drift from
them), plus every steering command with what it does in the engine's terms."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from ..commands import BY_ACTION, NAVIGATION, STEERING

COMMON = (
    ("↑ ↓ PgUp PgDn Home End", "move in a table"),
    ("← →", "scroll a wide table's columns (narrow terminals)"),
    ("tab / shift+tab", "next / previous table in a panel"),
    ("enter or click", "open the selected row's details (esc closes)"),
    ("ctrl+p", "command palette: every action below, by name"),
    ("esc", "close a form, a detail or this help"),
)
FORMS = (
    ("enter", "next field, keeping what you typed; on the last field, submit"),
    ("↓ ↑", "in an id field: list the ids that fit, and move among them"),
    ("tab", "in an id field: take the highlighted id; elsewhere, the next field"),
    ("enter on a select", "open its choices; enter again chooses and moves on"),
    ("ctrl+s", "submit"),
    ("esc", "cancel: nothing changes"),
)


def _key(b: Binding) -> str:
    if b.key_display:
        return b.key_display
    return " ".join(k.replace("question_mark", "?").replace("equals_sign", "=").replace("plus", "+")
                    .replace("minus", "-") for k in b.key.split(","))


def _keys_table(rows: Iterable[tuple[str, str]]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold cyan", no_wrap=True, min_width=14)
    table.add_column()
    for key, what in rows:
        table.add_row(key, what)
    return table


def binding_rows(bindings: Iterable[Binding | tuple]) -> list[tuple[str, str]]:
    rows = []
    for b in bindings:
        if not isinstance(b, Binding):
            b = Binding(*b)
        action = b.action.removeprefix("app.")
        cmd = BY_ACTION.get(action)
        what = b.description or action
        if cmd is not None:
            what = f"{b.description} — {cmd.help}"
        elif action in NAVIGATION:
            what = f"{b.description} — {NAVIGATION[action]}"
        rows.append((_key(b), what))
    return rows


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark,f1", "close", "Close")]

    def __init__(self, sections: list[tuple[str, list[tuple[str, str]]]]) -> None:
        super().__init__()
        self.sections = sections

    def compose(self) -> ComposeResult:
        parts = []
        for title, rows in [*self.sections, ("Everywhere", list(COMMON)), ("In a form", list(FORMS))]:
            parts += [Text(title, "bold underline"), _keys_table(rows), Text("")]
        palette_only = [(c.title, c.help) for c in STEERING]
        parts += [Text("Command palette (ctrl+p)", "bold underline"), _keys_table(palette_only)]
        with VerticalScroll(id="help") as box:
            box.border_title = "Keys"
            box.border_subtitle = "esc: close"
            yield Static(Group(*parts))

    def on_mount(self) -> None:
        self.query_one("#help").focus()

    def action_close(self) -> None:
        self.dismiss(None)
