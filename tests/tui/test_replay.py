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
from tui.screens.form import FormScreen

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


async def fork_into(pilot, path: Path) -> None:
    """Press F at the position shown and answer the form with `path`."""
    await settle(pilot)
    await pilot.press("F")
    await pilot.pause()
    await pilot.press("ctrl+a", "ctrl+k", *str(path), "enter")
    await settle(pilot)


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
async def test_a_world_a_seek_leaves_behind_is_collected_once_the_new_one_is_shown(recording):
    """Worlds are built with the cyclic collector paused (engine/replay.py): the app frees
    the one it replaced itself, without waiting for the collector's own next turn."""
    import gc
    import weakref

    app = app_on(recording, 45.0)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        gc.disable()  # only the app's own collection may free it
        try:
            old = weakref.ref(app.world)
            await pilot.press("right_curly_bracket")  # the last moment: another checkpoint's world
            await settle(pilot)
            await pilot.pause()
            assert app.world is not old() and app.t == END
            assert old() is None
        finally:
            gc.enable()


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
        await fork_into(pilot, new)
    assert app.forked == new and new.exists()
    assert Recording(new).checkpoints[0].t == 60.0


# -- seeks: one at a time, the latest target wins ---------------------------------------------------
class SeekProbe:
    """Instruments a replay's seeks from outside (the product code is not told): how many
    `Recording.moment` calls and world advances are in flight at once, overall and per
    world, and a gate that holds the next seek until the test lets it go (a slow seek)."""

    def __init__(self, app: ReplayApp, monkeypatch) -> None:
        import engine.replay

        self.calls: list[float] = []  # the times asked of Recording.moment, in order
        self.seeks = self.most_seeks = 0
        self.advancing: dict[int, int] = {}
        self.most_advancing = self.most_on_one_world = 0
        self.gate: anyio.Event | None = None
        self.held = anyio.Event()  # set once a seek waits at the gate
        moment, advance = app.recording.moment, engine.replay.advance

        async def held_moment(t):
            self.calls.append(t)
            self.seeks += 1
            self.most_seeks = max(self.most_seeks, self.seeks)
            try:
                if self.gate is not None and not self.held.is_set():  # the first seek after hold()
                    self.held.set()
                    await self.gate.wait()
                return await moment(t)
            finally:
                self.seeks -= 1

        async def counted_advance(world, to):
            key = id(world)
            self.advancing[key] = self.advancing.get(key, 0) + 1
            self.most_on_one_world = max(self.most_on_one_world, self.advancing[key])
            self.most_advancing = max(self.most_advancing, sum(self.advancing.values()))
            try:
                await advance(world, to)
            finally:
                self.advancing[key] -= 1

        app.recording.moment = held_moment
        monkeypatch.setattr(engine.replay, "advance", counted_advance)

    def hold(self) -> None:
        self.gate, self.held = anyio.Event(), anyio.Event()

    def release(self) -> None:
        assert self.gate is not None
        self.gate.set()


async def shown_equals_direct(app: ReplayApp, path: Path, t: float) -> None:
    """The app shows the world at `t`: the same as a fresh recording's moment there."""
    direct = await Recording(path).moment(t)
    assert capture(app.world) == capture(direct.world)
    assert dict(app.world.ledger.scrip) == dict(direct.world.ledger.scrip)
    assert {a: ag.status for a, ag in app.world.agents.items()} == \
        {a: ag.status for a, ag in direct.world.agents.items()}


@pytest.mark.anyio
async def test_a_burst_of_steps_during_a_slow_seek_lands_where_they_add_up_to(recording, monkeypatch):
    """Keys pressed while a seek runs are taken at once (the app is not blocked behind the
    seek), and coalesce: each relative step applies to the target already asked for, the
    latest target wins, and only one seek runs at a time."""
    import math

    app = app_on(recording, 5.0)
    probe = SeekProbe(app, monkeypatch)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.t == 5.0
        before = len(probe.calls)
        probe.hold()
        try:
            with anyio.fail_after(5):  # (the old app was stuck here: it read no key until the seek ended)
                await pilot.press("greater_than_sign")  # one minute on: the seek waits at the gate
                await probe.held.wait()
                # While it waits: a minute more, then three events on from there. Each press
                # returns (the app reads keys while a seek runs).
                await pilot.press("greater_than_sign", "full_stop", "full_stop", "full_stop")
            assert app.t == 5.0  # nothing shown has moved yet
        finally:
            probe.release()
        await settle(pilot)
        # Where the steps add up to, worked out from the recording directly.
        rec = Recording(recording)
        seq = rec.events_before(math.nextafter(125.0, -math.inf), 1)[-1]["seq"]
        row = None
        for _ in range(3):
            row = rec.next_event(seq, 125.0)
            seq = row["seq"]
        assert (app.t, app.seq) == (row["t"], row["seq"])
        # The held seek, then one for everything pressed while it ran: no seek per key.
        assert len(probe.calls) - before == 2
        assert probe.most_seeks == 1 and probe.most_advancing == 1 and probe.most_on_one_world == 1
        await shown_equals_direct(app, recording, math.nextafter(row["t"], math.inf))


@pytest.mark.anyio
async def test_a_burst_of_keys_ends_at_the_right_position(recording, monkeypatch):
    """Without a gate: the keys as fast as the pilot sends them."""
    app = app_on(recording, 5.0)
    probe = SeekProbe(app, monkeypatch)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("greater_than_sign", "greater_than_sign", "less_than_sign", "greater_than_sign",
                          "right_square_bracket", "right_square_bracket")
        await settle(pilot)
        assert app.t == 140.0  # 5 + 3 minutes - 1 minute = 125, then the checkpoints at 130 and 140
        assert probe.most_seeks == 1 and probe.most_on_one_world == 1
        await shown_equals_direct(app, recording, 140.0)


@pytest.mark.anyio
async def test_play_ticks_do_not_pile_up_behind_a_slow_seek(recording, monkeypatch):
    """Play asks for the next moment every tick; while a seek is slow, ticks are skipped
    rather than queued or run beside it, and a key pressed meanwhile steps from the
    moment play had asked for."""
    import tui.replay

    monkeypatch.setattr(tui.replay, "PLAY_TICK_S", 0.01)  # ticks in quick succession
    app = ReplayApp(Recording(recording), 5.0, speed=10.0, follow=False, refresh_s=5.0, cursor_blink=False)
    probe = SeekProbe(app, monkeypatch)
    ticks = 0
    tick = app._play_tick

    async def counted_tick():
        nonlocal ticks
        ticks += 1
        pending = tick()
        if pending is not None:  # (an async tick, as it was)
            await pending

    app._play_tick = counted_tick  # (the play timer is set on mount, with this)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        before = len(probe.calls)
        probe.hold()
        try:
            with anyio.fail_after(5):
                await pilot.press("space")  # play: the next tick asks for T+5.1, and waits at the gate
                await probe.held.wait()
                seen = ticks
                with anyio.move_on_after(1):
                    while ticks < seen + 5:  # more ticks come while the seek is held
                        await pilot.pause(0.01)
                await pilot.press("space", "greater_than_sign")  # pause, and a minute on
        finally:
            probe.release()
        await settle(pilot)
        assert not app.playing
        assert probe.most_seeks == 1 and probe.most_on_one_world == 1
        assert ticks >= seen + 5  # the timer went on ticking while the seek was held (and they were let go)
        assert probe.calls[before:] == [5.1, 65.1]  # the tick's, then the key's; none piled up
        assert app.t == 65.1
        await shown_equals_direct(app, recording, 65.1)


# -- forking from the replay ---------------------------------------------------------------------------
@pytest.mark.anyio
async def test_the_app_goes_on_drawing_while_a_fork_is_written(recording, tmp_path, monkeypatch):
    """The fork runs the recording on to the moment and writes a journal: seconds on a big
    world. It runs in a thread; the app's loop meanwhile turns and draws frames (the old
    app waited on the thread with the loop stopped: no frame until the fork was done)."""
    import threading

    import engine.fork

    fork = engine.fork.fork_journal
    app = ReplayApp(Recording(recording), 60.0, follow=False, refresh_s=0.02, cursor_blink=False)
    frame = app.refresh_view
    forking, drawn, go_on = threading.Event(), threading.Event(), threading.Event()

    def watched_frame():
        frame()
        if forking.is_set():
            drawn.set()

    app.refresh_view = watched_frame  # (the frame timer is set on mount, with this)
    seen: dict[str, bool] = {}

    def watched_fork(*args, **kw):
        forking.set()  # in the fork's thread: is a frame drawn before the fork goes on?
        seen["drawn"] = drawn.wait(5)
        seen["thread"] = threading.current_thread() is not threading.main_thread()
        go_on.wait(5)  # (until the test has tried to cancel)
        return fork(*args, **kw)

    monkeypatch.setattr(engine.fork, "fork_journal", watched_fork)
    new = tmp_path / "branch.db"
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("F")
        await pilot.pause()
        try:
            await pilot.press("ctrl+a", "ctrl+k", *str(new), "enter")
            assert await anyio.to_thread.run_sync(forking.wait, 5)
            # Escape while the fork is being written does not leave it written unseen:
            # the form stays until the fork's answer closes it.
            await pilot.press("escape")
            assert isinstance(app.screen, FormScreen) and app.screen.answering
        finally:
            go_on.set()
        await settle(pilot)
    assert seen == {"drawn": True, "thread": True}
    assert app.forked == new and Recording(new).checkpoints[0].t == 60.0


@pytest.mark.anyio
@pytest.mark.parametrize("where", ["no such directory", "the recording itself", "a file that exists"])
async def test_a_fork_into_a_bad_path_is_refused_in_the_form_and_writes_nothing(recording, tmp_path, where):
    from tuikit import field_error

    existing = tmp_path / "exists.db"
    existing.write_bytes(b"mine")
    bad = {"no such directory": tmp_path / "missing" / "branch.db", "the recording itself": recording,
           "a file that exists": existing}[where]
    before = {p: p.read_bytes() for p in (recording, existing)}
    app = app_on(recording, 60.0)
    async with app.run_test(size=SIZE) as pilot:
        await fork_into(pilot, bad)
        form = app.screen
        assert isinstance(form, FormScreen) and form.refusal  # the form stays open, and says why
        assert field_error(pilot, "journal") == form.refusal
        assert form.widget_for("journal").has_class("-refused")
        assert app.forked is None
        assert not (tmp_path / "missing").exists()
        assert {p: p.read_bytes() for p in (recording, existing)} == before
        assert sorted(p.name for p in tmp_path.iterdir()) == ["exists.db"]
        # The refused form takes a good path at once, and forks into it.
        good = tmp_path / "branch.db"
        await pilot.press("ctrl+a", "ctrl+k", *str(good), "enter")
        await settle(pilot)
    assert app.forked == good and Recording(good).checkpoints[0].t == 60.0
    assert {p: p.read_bytes() for p in (recording, existing)} == before


# -- a detail open over the panels --------------------------------------------------------------------
def detail_text(app: ReplayApp) -> str:
    from textual.widgets import Static

    from tui.screens.detail import DetailScreen

    assert isinstance(app.screen, DetailScreen)
    console = Console(file=io.StringIO(), width=100)
    console.print(app.screen.query_one("#detail-body", Static).content)
    return console.file.getvalue()


@pytest.mark.anyio
async def test_a_detail_open_during_a_seek_shows_moments_never_the_world_half_way(recording, monkeypatch):
    """An agent's detail, open while the replay moves: while the shown world is run on to
    the next moment it keeps the last moment's picture (it had drawn the world half way),
    then shows the new moment at once; and after a seek that builds another world (across
    a checkpoint), it shows that world (it had stayed on the one it opened on)."""
    import engine.replay

    advance = engine.replay.advance
    gate, halfway = anyio.Event(), anyio.Event()
    held = False

    async def slow_advance(world, to):
        nonlocal held
        if not held and to > 66.0:  # the seek to 69: stop half way, at 65
            held = True
            await advance(world, 65.0)
            halfway.set()
            await gate.wait()
        await advance(world, to)

    monkeypatch.setattr(engine.replay, "advance", slow_advance)
    app = app_on(recording, 61.0)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        aid = max(app.world.agents, key=lambda a: app.world.agents[a].actions)  # a busy one
        app.show_details("agent", aid)
        await pilot.pause()
        at_61 = detail_text(app)
        shown = app.world
        app.seek(69.0)
        with anyio.fail_after(10):
            await halfway.wait()
        assert app.world is shown and shown.clock.now() == 65.0  # the shown world, half way
        app.screen.redraw()
        assert detail_text(app) == at_61
        gate.set()
        await settle(pilot)
        assert app.t == 69.0 and app.world is shown
        at_69 = detail_text(app)
        app.seek(95.0)  # across checkpoints: another world
        await settle(pilot)
        assert app.world is not shown
        at_95 = detail_text(app)
    assert len({at_61, at_69, at_95}) == 3
    # As a replay opened there shows it (its history too: from the checkpoint the moment grew from).
    assert (at_69, at_95) == (await opened_at(recording, 69.0, aid), await opened_at(recording, 95.0, aid))


async def opened_at(path: Path, t: float, aid: str) -> str:
    """The agent's detail as a replay opened at `t` shows it."""
    app = app_on(path, t)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.show_details("agent", aid)
        await pilot.pause()
        return detail_text(app)
