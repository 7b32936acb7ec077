"""FormScreen: every steering form. Fields are checked as you type (is it a number, is
it JSON); on submit the form asks the engine, and a refusal is shown under the field it
is about, in the engine's own words. Nothing changes until the engine says yes, and a
refused form stays open with what you typed."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Button, Input, Label, Static

from engine.actions import Result

Kind = Literal["int", "float", "text", "json", "id"]


class Invalid(ValueError):
    """A field's text is not of its kind; the message says what was expected."""


@dataclass(frozen=True)
class Field:
    name: str  # the engine argument it becomes
    label: str
    kind: Kind = "text"
    value: str = ""  # prefilled text
    placeholder: str = ""
    optional: bool = False
    suggestions: Sequence[str] = ()
    # Words in an engine refusal that mean it is about this field ("recipient" -> `to`).
    words: tuple[str, ...] = field(default_factory=tuple)

    def parse(self, text: str) -> Any:
        """The field's value, or None when optional and empty. Ranges and existence are
        the engine's to judge (so its reason is the one shown); here only the form."""
        text = text.strip()
        if not text:
            if self.optional:
                return None
            raise Invalid("required")
        if self.kind == "int":
            try:
                return int(text.replace("_", "").replace(",", ""))
            except ValueError:
                raise Invalid(f"a whole number, not {text!r}") from None
        if self.kind == "float":
            try:
                value = float(text.replace("_", "").replace(",", ""))
            except ValueError:
                raise Invalid(f"a number, not {text!r}") from None
            if not math.isfinite(value):
                raise Invalid(f"a finite number, not {text!r}")
            return value
        if self.kind == "json":
            try:
                return json.loads(text)
            except json.JSONDecodeError as e:
                raise Invalid(f"not JSON: {e.msg} at column {e.colno}") from None
        return text


Submit = Callable[[dict[str, Any]], Result]


class FormScreen(ModalScreen[Result | None]):
    """A modal form. Dismisses with the engine's successful Result, or None if cancelled."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "submit", "Submit"),
    ]

    def __init__(self, title: str, fields: Sequence[Field], submit: Submit, *, description: str = "",
                 ok: str = "Submit", blink: bool = True) -> None:
        super().__init__()
        self.title_text = title
        self.fields = list(fields)
        self.submit = submit
        self.description = description
        self.ok_label = ok
        self.blink = blink
        self.refusal: str | None = None  # the engine's last word, for tests and the status line

    def compose(self) -> ComposeResult:
        with Vertical(id="form"):
            yield Static(Text(self.title_text, "bold"), id="form-title")
            if self.description:
                yield Static(Text(self.description, "dim"), id="form-description")
            for f in self.fields:
                with Horizontal(classes="form-row"):
                    yield Label(f.label + ("" if not f.optional else " (opt.)"), classes="form-label")
                    yield Input(
                        value=f.value,
                        placeholder=f.placeholder,
                        id=f"field-{f.name}",
                        compact=True,
                        suggester=SuggestFromList(f.suggestions, case_sensitive=True) if f.suggestions else None,
                        select_on_focus=False,
                    )
                yield Static(id=f"error-{f.name}", classes="form-error")
            yield Static(id="form-error", classes="form-error")
            with Horizontal(id="form-buttons"):
                yield Button(self.ok_label, id="form-ok", variant="primary", compact=True)
                yield Button("Cancel", id="form-cancel", compact=True)
                yield Static(Text("enter: next/submit · esc: cancel", "dim"), id="form-hint")

    def on_mount(self) -> None:
        for inp in self.query(Input):
            inp.cursor_blink = self.blink
        first_empty = next((f for f in self.fields if not f.value), self.fields[0] if self.fields else None)
        if first_empty is not None:
            self.query_one(f"#field-{first_empty.name}", Input).focus()

    # -- inline validation -------------------------------------------------------------------
    def _field(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)

    def _show_error(self, name: str | None, message: str | None) -> None:
        target = self.query_one("#form-error" if name is None else f"#error-{name}", Static)
        target.update(Text(message, "bold red") if message else "")
        target.set_class(bool(message), "-shown")
        if name is not None:
            self.query_one(f"#field-{name}", Input).set_class(bool(message), "-refused")

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        name = (event.input.id or "").removeprefix("field-")
        f = self._field(name)
        try:
            if event.value.strip() or not f.optional:
                f.parse(event.value) if event.value.strip() else None
            self._show_error(name, None)
        except Invalid as e:
            self._show_error(name, str(e))
        self._show_error(None, None)

    @on(Input.Submitted)
    def _next_or_submit(self, event: Input.Submitted) -> None:
        inputs = list(self.query(Input))
        i = inputs.index(event.input)
        if i + 1 < len(inputs):
            inputs[i + 1].focus()
        else:
            self.action_submit()

    @on(Button.Pressed, "#form-ok")
    def _ok(self) -> None:
        self.action_submit()

    @on(Button.Pressed, "#form-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)

    # -- submitting --------------------------------------------------------------------------
    def values(self) -> dict[str, Any] | None:
        """Parsed arguments, or None after showing what is wrong."""
        args: dict[str, Any] = {}
        ok = True
        for f in self.fields:
            try:
                value = f.parse(self.query_one(f"#field-{f.name}", Input).value)
            except Invalid as e:
                self._show_error(f.name, str(e))
                ok = False
                continue
            self._show_error(f.name, None)
            if value is not None:
                args[f.name] = value
        return args if ok else None

    def action_submit(self) -> None:
        self.refusal = None
        args = self.values()
        if args is None:
            self._show_error(None, "fix the fields marked above")
            return
        result = self.submit(args)
        if result.ok:
            self.dismiss(result)
            return
        self.refusal = result.error or "refused"
        name = self.field_for(self.refusal)
        self._show_error(name, self.refusal)
        if name is not None:
            self._show_error(None, None)
            self.query_one(f"#field-{name}", Input).focus()

    def field_for(self, reason: str) -> str | None:
        """Which field a refusal is about: the one whose value it quotes, else the first
        whose name or words it mentions, else none (shown under the whole form)."""
        for f in self.fields:
            text = self.query_one(f"#field-{f.name}", Input).value.strip()
            if text and (f"'{text}'" in reason or f'"{text}"' in reason):
                return f.name
        for f in self.fields:
            for word in (f.name, *f.words):
                if re.search(rf"\b{re.escape(word)}\b", reason):
                    return f.name
        return None
