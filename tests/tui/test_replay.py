"""The replay screen: a recorded world shown as of any moment, the same however reached.

The recording is a seeded default world on virtual time (150 world seconds, a checkpoint
every 10); the app runs at a fixed size with nothing blinking, so each picture is the same
on every run. Three positions (a checkpoint, a minute, a moment between) are each reached
by stepping forward, by stepping back and by jumping: the three screens must be identical,
and one of each is kept as a snapshot.

    pytest tests/tui/test_replay.py --snapshot-update    # accept new pictures (look first!)
"""

from __future__ import annotations

import io
from pathlib import Path

import anyio
import pytest
from rich.console import Console

from engine.checkpoint import capture
from engine.config import load_scenario
from engine.headless import run_headless
from engine.replay import Recording
from engine.world import World
from tui.replay import READ_ONLY, ReplayApp

SIZE = (120, 36)
END = 150.0


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    config = load_scenario("default")
    config = config.model_copy(update={"seed": 5, "clock": config.clock.model_copy(update={"virtual": True})})
    world = World(config)
    path = tmp_path_factory.mktemp("replay") / "recorded.db"
    world.attach_journal(path)
    code, _ = anyio.run(run_headless, world, END, None, Console(file=io.StringIO()))
    assert code == 0
    return path


def app_on(path: Path, at: float | None = None) -> ReplayApp:
    return ReplayApp(Recording(path), at, follow=False, refresh_s=5.0, cursor_blink=False)


async def settle(pilot) -> None:
    await pilot.app.workers.wait_for_complete()  # the timeline's marks, read in a thread
    await pilot.pause()


# position: ((start, keys) stepping forward, (start, keys) stepping back, typed time)
PATHS = {
    "a checkpoint": (30.0, (None, ["right_square_bracket"] * 3), (END, ["left_square_bracket"] * 12), "30"),
    "a minute": (60.0, (None, ["greater_than_sign"]), (120.0, ["less_than_sign"]), "T+1m"),
    "between checkpoints": (75.0, (15.0, ["greater_than_sign"]), (135.0, ["less_than_sign"]), "00:01:15"),
}


async def screen_after(path: Path, at: float | None, keys: list[str], jump: str | None = None) -> tuple[str, float]:
    app = app_on(path, at)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)
        if jump is not None:
            await pilot.press("j")
            await pilot.pause()
            await pilot.press(*jump, "enter")
            await settle(pilot)
        return app.export_screenshot(), app.t


@pytest.mark.anyio
@pytest.mark.parametrize("name", list(PATHS))
async def test_a_position_looks_the_same_however_it_is_reached(recording, name):
    t, forward, back, typed = PATHS[name]
    by_forward = await screen_after(recording, *forward)
    by_back = await screen_after(recording, *back)
    by_jump = await screen_after(recording, None, [], typed)
    assert by_forward[1] == by_back[1] == by_jump[1] == t
    assert by_forward[0] == by_back[0] == by_jump[0]


class TestReplaySnapshots:
    """One picture per position (reached by stepping forward; the test above shows the
    other ways give the same screen)."""

    @pytest.mark.parametrize("name", list(PATHS))
    def test_position(self, snap_compare, recording, name):
        _, (at, keys), _, _ = PATHS[name]

        async def go(pilot):
            await settle(pilot)
            for key in keys:
                await pilot.press(key)
                await settle(pilot)

        assert snap_compare(app_on(recording, at), run_before=go, terminal_size=SIZE)


@pytest.mark.anyio
async def test_the_replay_shows_the_world_of_its_position(recording):
    app = app_on(recording, 45.0)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        direct = World(Recording(recording).config)
        await direct.run(final_window=False, until=45.0)
        assert app.t == 45.0 and capture(app.world) == capture(direct)


@pytest.mark.anyio
async def test_steering_is_off_and_points_at_fork(recording):
    app = app_on(recording, 30.0)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        scrip = dict(app.world.ledger.scrip)
        await pilot.press("t")  # give scrip, in the live app
        await pilot.pause()
        assert app.world.ledger.scrip == scrip and len(app.screen_stack) == 1
        assert any(READ_ONLY in str(n.message) for n in app._notifications)


@pytest.mark.anyio
async def test_stepping_by_event_moves_through_the_recorded_events(recording):
    app = app_on(recording, 30.0)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        seq = app.seq
        await pilot.press("full_stop")
        await settle(pilot)
        assert app.seq == seq + 1
        await pilot.press("comma")
        await settle(pilot)
        assert app.seq == seq


@pytest.mark.anyio
async def test_stepping_shows_each_recorded_event_once(recording):
    """Stepping runs the same world on to the next event; what it publishes on the way is
    already among the recorded rows, so the events panel must not show it a second time
    (it did: a resolution's mint appeared twice)."""
    from engine.replay import as_event
    from tui.format import describe_event

    app = ReplayApp(Recording(recording), None, follow=False, refresh_s=0.05, cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("greater_than_sign", "greater_than_sign")  # two minutes on, in one burst
        await settle(pilot)
        await pilot.press("full_stop")  # one event into the resolution's instant
        await settle(pilot)
        await pilot.pause(0.2)  # frames run: they drain what the world published
        app.refresh_view()  # a frame: it drains what the world published into the panel
        shown = [line.plain for _, line in app._events_panel.lines]
        rows = [r for r in app.recording.events_before(app.t, 10_000) if r["seq"] <= app.seq]
        recorded = [line.plain for line in (describe_event(e) for e in map(as_event, rows) if e is not None)
                    if line is not None]
        assert shown and shown == recorded[-len(shown):]


@pytest.mark.anyio
async def test_forking_from_the_replay_writes_a_branch_at_the_position(recording, tmp_path):
    app = app_on(recording, 60.0)
    new = tmp_path / "branch.db"
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("F")
        await pilot.pause()
        await pilot.press("ctrl+a", "ctrl+k", *str(new), "enter")
        await settle(pilot)
    assert app.forked == new and new.exists()
    assert Recording(new).checkpoints[0].t == 60.0
