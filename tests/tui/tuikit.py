"""Helpers for the app's tests: build the app on a stopped demo world, drive forms, read
what the screen says. The engine never runs here, so nothing moves unless the test (or
the operator, through the app) moves it."""

from __future__ import annotations

import asyncio
import copy
import copyreg
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Static

from demo import demo_config, demo_world  # tests/tui/demo.py
from tui.app import EcologyApp
from tui.screens.form import FormScreen
from tui.widgets.live_table import LiveTable

SIZE = (80, 24)


_PRISTINE = None


def fresh_world():
    """A private copy of the demo world. Running it costs a quarter second; copying the
    result costs a third of that, and every test may change its copy as it likes. The
    stopped world still holds finished asyncio futures from its run, which cannot be
    copied; they are never awaited again, so the copy holds None instead (for the length
    of the copy only: the rule is not left registered for anyone else)."""
    global _PRISTINE
    if _PRISTINE is None:
        _PRISTINE = demo_world()
    table = copyreg.dispatch_table
    table[asyncio.Future] = lambda _future: (type(None), ())
    try:
        return copy.deepcopy(_PRISTINE)
    finally:
        del table[asyncio.Future]


def make_app(world=None, **kw: Any) -> EcologyApp:
    """The app on a stopped world: every frame is the same frame (no real time shown,
    no cursor blink). Steering redraws at once, so the periodic frame is slowed down:
    Pilot waits for the process to be idle, and a quiet app is idle sooner."""
    world = world if world is not None else fresh_world()
    kw.setdefault("refresh_s", 5.0)
    return EcologyApp(demo_config(), world=world, run_engine=False, cursor_blink=False, **kw)


async def show(pilot: Pilot, panel_key: str, table: str | None = None, row: str | None = None) -> None:
    """Switch panel with its number key, focus a table and put the cursor on a row."""
    await pilot.press(panel_key)  # press returns once the app is idle again
    if table is not None:
        t = pilot.app.query_one(f"#{table}", LiveTable)
        t.focus()
        if row is not None:
            assert row in t.keys_in_order, (row, t.keys_in_order[:20])
            t.select(row)


def form(pilot: Pilot) -> FormScreen:
    screen = pilot.app.screen
    assert isinstance(screen, FormScreen), f"expected a form, the screen is {type(screen).__name__}"
    return screen


async def fill(pilot: Pilot, **values: str) -> None:
    """Put text in the form's fields (as if typed; a select takes one of its choices) and
    let inline validation run."""
    screen = form(pilot)
    for name, text in values.items():
        screen.set_text(name, text)
    await pilot.pause()


async def submit(pilot: Pilot, **values: str) -> None:
    screen = form(pilot)
    for name, text in values.items():
        screen.set_text(name, text)
    await pilot.press("ctrl+s")  # press waits until the app is idle again


async def burst(pilot: Pilot, *keys: str) -> None:
    """Type keys the way a fast typist or a paste does: every key event reaches the app
    before the app has handled the first (Pilot.press waits for idle after each key)."""
    from textual import events

    app = pilot.app
    for key in keys:
        char = key if len(key) == 1 else None
        event = events.Key(key, char)
        event.set_sender(app)
        app._driver.send_message(event)
    await pilot.pause()


def offered(pilot: Pilot, name: str) -> list[str]:
    """The ids a field offers: a select's options, or an input's completion choices."""
    from textual.widgets import Select

    screen = form(pilot)
    widget = screen.widget_for(name)
    if isinstance(widget, Select):
        return [value for _, value in widget._options if value is not Select.NULL]
    return list(screen._field(name).choices)


def field_error(pilot: Pilot, name: str | None = None) -> str:
    """The message under a field (or under the whole form), '' when none."""
    screen = form(pilot)
    widget = screen.query_one("#form-error" if name is None else f"#error-{name}", Static)
    content = widget.content
    return getattr(content, "plain", str(content)) if widget.display else ""


def refused(pilot: Pilot, name: str) -> str:
    """The engine's refusal of the last submit, checked to be shown under field `name`
    (the wording is the engine's: tests look for its gist, not its exact text)."""
    screen = form(pilot)
    assert screen.refusal, "the engine refused nothing"
    assert field_error(pilot, name) == screen.refusal, (name, field_error(pilot, name), screen.refusal)
    return screen.refusal


def notices(app: EcologyApp, severity: str | None = None) -> list[str]:
    return [n.message for n in app._notifications if severity is None or n.severity == severity]


async def shown(pilot: Pilot) -> str:
    """What the terminal shows once the pending screen update has happened."""
    await pilot.pause()
    return screen_text(pilot.app)


def screen_text(app: EcologyApp) -> str:
    """What the terminal shows, as plain text."""
    import io

    from rich.console import Console

    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True,
                      color_system="truecolor", record=True, legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text(styles=False)


def fingerprint(world) -> dict:
    """Everything the operator could change, to check that a refused input changed nothing."""
    ledger = world.ledger
    return {
        "scrip": dict(ledger.scrip),
        "held": dict(ledger.held),
        "rates": dict(ledger.rate_micro),
        "capacity": {p: b.capacity for p, b in ledger.buckets.items()},
        "owners": {a.id: a.owner for a in world.artifacts.by_id.values()},
        "versions": {a.id: a.version for a in world.artifacts.by_id.values()},
        "bids": {k: b.amount for k, b in world.oracle.bids.items()},
        "resolved": world.oracle.resolved,
        "listings": sorted(world.market.open),
        "contracts": {c: (a.content["status"], a.content["repaid"]) for c, a in world.contracts.contracts.items()},
        "agents": {a.id: (a.paused, a.stopped, a.crashed) for a in world.agents.values()},
        "paused": world.paused,
        "speed": world.clock.speed,
    }
