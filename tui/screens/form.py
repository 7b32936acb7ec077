"""FormScreen: every steering form. Fields are checked as you type (is it a number, is
it JSON); on submit the form asks the engine, and a refusal is shown under the field it
is about (the argument the engine names in `Result.arg`), in the engine's own words.
Nothing changes until the engine says yes, and a refused form stays open with what you typed.

Id fields offer what fits: a field whose valid choices are few is a select; one with many
(live agents, say) completes as you type from a dropdown (textual-autocomplete), and tab
takes the highlighted choice. Enter keeps exactly what was typed and moves to the next
field at once, before the next key is handled, so keys typed in a burst land in the field
they were typed for (the form's enter is a priority binding: it runs when the app reads
the key, not when the field gets round to it)."""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from rich.text import Text
from textual import on
from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Input, Label, Select, Static
from textual_autocomplete import AutoComplete, DropdownItem, TargetState

from engine.actions import Result

Kind = Literal["int", "float", "text", "json", "id"]
SELECT_MAX = 12  # a closed field with at most this many choices is a select


class Invalid(ValueError):
    """A field's text is not of its kind; the message says what was expected."""


@dataclass(frozen=True)
class Field:
    name: str  # the engine argument it becomes (unless `argument` says otherwise)
    label: str
    kind: Kind = "text"
    value: str = ""  # prefilled text
    placeholder: str = ""
    optional: bool = False
    choices: Sequence[str] = ()  # ids that fit, best first (completion or select options)
    # With `closed`, only the choices are valid (the engine still judges): few become a select.
    closed: bool = False
    hints: dict[str, str] = field(default_factory=dict)  # a few words beside a choice
    # The engine argument it becomes when that is not its name (a debt claim is sold as
    # market.list's `artifact`): a refusal about that argument is shown under this field.
    argument: str | None = None

    @property
    def arg(self) -> str:
        """The engine argument this field becomes."""
        return self.argument or self.name

    @property
    def is_select(self) -> bool:
        return self.closed and len(self.choices) <= SELECT_MAX

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


# The engine's answer, or (for an answer that takes a while: a fork) an awaitable of it,
# awaited in a worker so that the app goes on drawing; the form waits, one submit at a time.
Submit = Callable[[dict[str, Any]], Result | Awaitable[Result]]


def matches(choices: Sequence[str], text: str) -> list[str]:
    """The choices that fit what was typed: those starting with it, then those containing
    it, each in the order given (best first)."""
    if not text:
        return list(choices)
    starts = [c for c in choices if c.startswith(text)]
    within = [c for c in choices if text in c and not c.startswith(text)]
    return starts + within


class Choices(AutoComplete):
    """The dropdown under an id field: what fits the text so far, with a hint each."""

    def __init__(self, target: str, f: Field) -> None:
        super().__init__(target, candidates=None, prevent_default_tab=True)
        self.field = f

    def get_candidates(self, target_state: TargetState) -> list[DropdownItem]:
        return []  # the matches come from the field's choices, in its order (below)

    def get_matches(self, target_state: TargetState, candidates: list[DropdownItem],
                    search_string: str) -> list[DropdownItem]:
        hints = self.field.hints
        return [HintedItem(c, hints.get(c)) for c in matches(self.field.choices, search_string)[:50]]

    def should_show_dropdown(self, search_string: str) -> bool:
        # Offered from the first key typed (the placeholder says what to type before that),
        # and not once the text is exactly the only choice.
        count = self.option_list.option_count
        if not search_string or count == 0:
            return False
        return not (count == 1 and search_string in self.field.choices)


class HintedItem(DropdownItem):
    """A choice and, dimmed beside it, a hint; completing inserts the choice alone."""

    def __init__(self, choice: str, hint: str | None) -> None:
        self.choice = choice
        main = Content(choice) if not hint else Content.assemble(choice, ("  " + hint, "dim"))
        super().__init__(main)

    @property
    def value(self) -> str:
        return self.choice


class FormScreen(ModalScreen[Result | None]):
    """A modal form. Dismisses with the engine's successful Result, or None if cancelled."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "submit", "Submit"),
        # A priority binding runs as the app reads the key: the next key goes to the next field.
        Binding("enter", "next_field", "Next field", show=False, priority=True),
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
        self.answering = False  # a submit's answer is on its way

    def compose(self) -> ComposeResult:
        with Vertical(id="form"):
            yield Static(Text(self.title_text, "bold"), id="form-title")
            if self.description:
                yield Static(Text(self.description, "dim"), id="form-description")
            for f in self.fields:
                with Horizontal(classes="form-row"):
                    yield Label(f.label + ("" if not f.optional else " (opt.)"), classes="form-label")
                    if f.is_select:
                        # What the person selected stays offered even if it does not fit:
                        # the engine then says why, rather than the form dropping it unsaid.
                        options = [*f.choices] + ([f.value] if f.value and f.value not in f.choices else [])
                        # A required field with one choice has it chosen already.
                        value = f.value or (options[0] if len(options) == 1 and not f.optional else "")
                        yield Select(
                            [(c + (f"  {f.hints[c]}" if c in f.hints else ""), c) for c in options],
                            prompt=f.placeholder or ("none to choose" if not options else "choose"),
                            value=value or Select.NULL,
                            allow_blank=True, compact=True, id=f"field-{f.name}",
                        )
                    else:
                        yield Input(value=f.value, placeholder=f.placeholder, id=f"field-{f.name}",
                                    compact=True, select_on_focus=False)
                yield Static(id=f"error-{f.name}", classes="form-error")
            yield Static(id="form-error", classes="form-error")
            with Horizontal(id="form-buttons"):
                yield Button(self.ok_label, id="form-ok", variant="primary", compact=True)
                yield Button("Cancel", id="form-cancel", compact=True)
                yield Static(Text(self.hint_text(), "dim"), id="form-hint")
        for f in self.fields:
            if f.choices and not f.is_select:
                yield Choices(f"#field-{f.name}", f)  # a selector: the input is not mounted yet

    def hint_text(self) -> str:
        if any(f.choices and not f.is_select for f in self.fields):
            return "tab: complete · enter: next · esc: cancel"
        return "enter: next/submit · esc: cancel"

    def on_mount(self) -> None:
        for inp in self.query(Input):
            inp.cursor_blink = self.blink
        first_empty = next((f for f in self.fields if not self.text_of(f.name)), self.fields[0] if self.fields else None)
        if first_empty is not None:
            self.widget_for(first_empty.name).focus()

    # -- fields as widgets -------------------------------------------------------------------
    def widget_for(self, name: str) -> Input | Select:
        return self.query_one(f"#field-{name}")  # type: ignore[return-value]

    def text_of(self, name: str) -> str:
        """What a field holds, as text: an input's text, a select's choice ("" for none)."""
        widget = self.widget_for(name)
        if isinstance(widget, Select):
            return "" if widget.is_blank() else str(widget.value)
        return widget.value

    def set_text(self, name: str, text: str) -> None:
        """Put text in a field as if typed (a select takes one of its choices, or none)."""
        widget = self.widget_for(name)
        if isinstance(widget, Select):
            widget.value = text if text else Select.NULL
        else:
            widget.value = text

    def _fields_in_order(self) -> list[Widget]:
        return [self.widget_for(f.name) for f in self.fields]

    def action_next_field(self) -> None:
        """Enter in an input: keep what was typed and move on now, or submit from the last
        field. Elsewhere (a select, its menu, a button) enter does what it does there."""
        focused = self.focused
        if not isinstance(focused, Input):
            raise SkipAction()
        widgets = self._fields_in_order()
        i = widgets.index(focused) if focused in widgets else len(widgets) - 1
        if i + 1 < len(widgets):
            # Screen.set_focus now, not Widget.focus (which waits for the message loop):
            # the next key is forwarded to whatever has focus when the app reads it.
            self.set_focus(widgets[i + 1])
        else:
            # Submit once the field has handled the keys that came before this enter: a
            # priority binding runs as the app reads the key, and keys typed in the same
            # burst (a terminal sends `T+1m` and its return in one write) are still queued
            # for the field, which would be read without them.
            focused.call_later(self.action_submit)

    # -- inline validation -------------------------------------------------------------------
    def _field(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)

    def _show_error(self, name: str | None, message: str | None) -> None:
        target = self.query_one("#form-error" if name is None else f"#error-{name}", Static)
        target.update(Text(message, "bold red") if message else "")
        target.set_class(bool(message), "-shown")
        if name is not None:
            self.widget_for(name).set_class(bool(message), "-refused")

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

    @on(Select.Changed)
    def _chosen(self, event: Select.Changed) -> None:
        """A choice made moves on to the next field, as enter does in an input."""
        name = (event.select.id or "").removeprefix("field-")
        self._show_error(name, None)
        self._show_error(None, None)
        if not event.select.is_blank() and (event.select.has_focus or event.select.expanded):
            widgets = self._fields_in_order()
            i = widgets.index(event.select)
            if i + 1 < len(widgets):
                widgets[i + 1].focus()
            else:
                self.query_one("#form-ok", Button).focus()

    @on(Button.Pressed, "#form-ok")
    def _ok(self) -> None:
        self.action_submit()

    @on(Button.Pressed, "#form-cancel")
    def action_cancel(self) -> None:
        if self.answering:  # what was submitted is being done: its answer closes the form
            self.app.bell()
            return
        self.dismiss(None)

    # -- submitting --------------------------------------------------------------------------
    def values(self) -> dict[str, Any] | None:
        """Parsed arguments, or None after showing what is wrong."""
        args: dict[str, Any] = {}
        ok = True
        for f in self.fields:
            try:
                value = f.parse(self.text_of(f.name))
            except Invalid as e:
                self._show_error(f.name, str(e))
                ok = False
                continue
            self._show_error(f.name, None)
            if value is not None:
                args[f.arg] = value
        return args if ok else None

    def action_submit(self) -> None:
        if self.answering:
            return
        self.refusal = None
        args = self.values()
        if args is None:
            self._show_error(None, "fix the fields marked above")
            return
        result = self.submit(args)
        if inspect.isawaitable(result):
            self.answering = True
            self.query_one("#form-hint", Static).update(Text("working…", "dim"))
            self.run_worker(self._answer(result), name="submit", group="submit")
            return
        self._answered(result)

    async def _answer(self, pending: Awaitable[Result]) -> None:
        try:
            result = await pending
        finally:
            self.answering = False
        self.query_one("#form-hint", Static).update(Text(self.hint_text(), "dim"))
        self._answered(result)

    def _answered(self, result: Result) -> None:
        if result.ok:
            self.dismiss(result)
            return
        self.refusal = result.error or "refused"
        name = self.field_for(result)
        self._show_error(name, self.refusal)
        if name is not None:
            self._show_error(None, None)
            self.widget_for(name).focus()

    def field_for(self, result: Result) -> str | None:
        """Which field a refusal is about: the one that became the argument the engine names
        (`Result.arg`); else none (the reason is shown under the whole form)."""
        if result.arg is None:
            return None
        return next((f.name for f in self.fields if f.arg == result.arg), None)
