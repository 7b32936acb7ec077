"""`ecology replay FILE.db`: the app on a recorded world, read-only, with a timeline.

Every panel shows the world as of the position (engine/replay.py builds it: the last
checkpoint before, run on to the position on a virtual-time recording), and the events
panel the recorded events up to it. Keys (also in the timeline and the help):

    , .   one event back / forward      [ ]   one checkpoint back / forward
    < >   one minute back / forward     { }   the first / last moment
    space play / pause                  + -   play faster / slower
    j     jump to a typed time (01:23:45, T+5m or seconds)
    F     fork here: a new journal from this moment, opened live

Stepping to an event shows the world at the end of that event's instant. Steering keys
are off (a recorded world does not change); each says so and points at fork. A journal
still being written is followed: the recording's end moves as it grows.

Seeking is one serial thing: a key asks for a position and returns at once, and one seek
(a worker) builds and shows the asked-for moments one at a time. Asks made while a seek
runs coalesce, the latest winning, and a relative step (an event, a checkpoint, a minute)
steps from the position last asked for, not the one still shown: `>` pressed three times
lands three minutes on. Play asks for its next moment only when no seek is under way (its
ticks are skipped, not queued). Running a world on to a moment gives the event loop its
turn between bursts (engine/scheduler.py), so the app reads keys and draws meanwhile; it
does not draw the world shown while that very world is being run on (between two moments).
Forking runs in a thread: the app goes on drawing while the branch is written.
"""

from __future__ import annotations

import gc
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from textual import events
from textual.binding import Binding
from textual.widgets import Footer

from engine.actions import Result
from engine.agent import remember_history
from engine.fork import parse_at
from engine.journal_file import JournalError
from engine.replay import Moment, Recording, as_event

from .app import UI_KINDS, EcologyApp
from .format import describe_event
from .screens.detail import DetailScreen
from .screens.form import Field, FormScreen
from .widgets.timeline import Timeline, TimelineState

PLAY_TICK_S = 0.25  # real seconds between two steps of play
FOLLOW_S = 2.0  # real seconds between two looks at a journal being written
SPEEDS = (1, 2, 5, 10, 30, 60, 120, 300, 600)
EVENTS_SHOWN = 200
COLLECT_AFTER = 4  # worlds left behind by a run of seeks before one is collected anyway

# Every steering action of the live app: read-only here.
STEERING_ACTIONS = (
    "set_speed", "spawn", "stop_agent", "pause_agent", "resume_agent", "toggle_agent_pause", "restart_agent",
    "transfer_scrip", "transfer_compute", "transfer_rate", "set_rate", "set_capacity", "configure",
    "write_artifact", "bid", "cancel_bid", "resolve_now", "list_artifact", "buy_listing", "cancel_listing",
    "transfer_artifact", "slice_rate", "offer_loan", "accept_loan", "decline_loan", "cancel_loan", "repay_loan",
    "sell_claim",
)
READ_ONLY = "A replay is read-only: the recorded world cannot be steered. Press F to fork the world here " \
            "into a new journal, and steer the branch."


@dataclass(frozen=True)
class Position:
    """A position asked for: world time `t`, the last event to show (`seq`; None: every
    event before `t`, or at it with `after`), and with `after` the world at the end of
    `t`'s instant rather than at its start."""

    t: float
    seq: int | None = None
    after: bool = False


class ReplayApp(EcologyApp):
    TITLE = "Agent Ecology — replay"
    BINDINGS = [
        Binding("space", "toggle_pause", "Play/Pause"),
        Binding("plus,equals_sign", "faster", "Play faster", key_display="+", show=False),
        Binding("minus", "slower", "Play slower", show=False),
        Binding("comma", "step_event(-1)", "Event back", key_display=",", show=False),
        Binding("full_stop", "step_event(1)", "Event forward", key_display=".", show=False),
        Binding("left_square_bracket", "step_checkpoint(-1)", "Checkpoint back", key_display="[", show=False),
        Binding("right_square_bracket", "step_checkpoint(1)", "Checkpoint forward", key_display="]", show=False),
        Binding("less_than_sign", "step_minute(-1)", "Minute back", key_display="<", show=False),
        Binding("greater_than_sign", "step_minute(1)", "Minute forward", key_display=">", show=False),
        Binding("left_curly_bracket", "first", "First", key_display="{", show=False),
        Binding("right_curly_bracket", "last", "Last", key_display="}", show=False),
        Binding("j", "jump", "Jump to…"),
        Binding("F", "fork", "Fork here"),
    ]

    def __init__(self, recording: Recording, at: float | None = None, *, speed: float = 10.0,
                 follow: bool = True, **kw: Any) -> None:
        self.recording = recording
        recording.history = True  # agents' recent actions, as the detail screens show them
        first = recording.checkpoints[0]
        start = Moment(first.t, recording.restore_checkpoint(0), first, True)
        super().__init__(recording.config, world=start.world, run_engine=False, **kw)
        self.moment = start
        self.t = start.t
        self.seq = first.seq  # the last event shown
        self.speed = speed
        self.playing = False
        self.follow = follow
        self._initial = recording.start if at is None else at
        self._marks: dict[str, list[float]] = {"checkpoint": [c.t for c in recording.checkpoints],
                                               "operator": [c.t for c in recording.checkpoints
                                                            if c.reason == "operator"]}
        self.forked: Path | None = None  # set when the replay ends by forking
        # The one seek: the latest position asked for and not yet begun, the one being
        # built, and whether the seeker (a worker) is on. Only the event loop touches them.
        self._asked: Position | None = None
        self._seeking: Position | None = None
        self._seeker_on = False
        self._running_shown = False  # the world shown is being run on to the next moment
        self._left_behind = 0  # worlds seeks replaced, not yet collected

    def compose(self):
        for widget in super().compose():
            if isinstance(widget, Footer):
                yield Timeline(id="timeline")
            yield widget

    async def on_mount(self, event: events.Mount) -> None:
        event.prevent_default()  # the live app's mount runs once, here, and not again after
        super().on_mount()
        self._header.engine_state = "replay"
        self._timeline = self.query_one(Timeline)
        self.set_interval(PLAY_TICK_S, self._play_tick, name="play")
        if self.follow:
            self.set_interval(FOLLOW_S, self._follow, name="follow")
        self.run_worker(self._load_marks, thread=True, exclusive=True, group="marks")
        self.seek(self._initial)

    # -- moving ---------------------------------------------------------------------------------------
    def seek(self, t: float, seq: int | None = None, after: bool = False) -> None:
        """Ask for the world at `t` (with `after`, at the end of that instant) and the events
        up to `seq` (default: every event before `t`, or at it with `after`). Returns at
        once: the seeker shows it when built, unless a later ask has replaced it by then."""
        rec = self.recording
        self._asked = Position(min(max(t, rec.start), rec.end), seq, after)
        if not self._seeker_on:
            self._seeker_on = True
            self.run_worker(self._seeker, name="seek", group="seek")

    def aim(self) -> Position:
        """Where a relative step starts from: the position last asked for (waiting, or
        being built), else the one shown."""
        return self._asked or self._seeking or Position(self.t, self.seq)

    def _last_event(self, position: Position) -> int:
        """The last event shown at `position`: its `seq`, else the last before its time
        (at it, with `after`)."""
        if position.seq is not None:
            return position.seq
        rec = self.recording
        rows = rec.events_before(position.t if position.after else math.nextafter(position.t, -math.inf), 1)
        return rows[-1]["seq"] if rows else rec.checkpoints[0].seq

    @property
    def seeking(self) -> bool:
        """Is a seek asked for or under way?"""
        return self._seeker_on

    async def _seeker(self) -> None:
        """The one seek: build and show each position asked for, one at a time, until no
        ask is left (asks made meanwhile replace one another: the latest wins)."""
        try:
            while (position := self._asked) is not None:
                self._asked, self._seeking = None, position
                try:
                    await self._show(position)
                except JournalError as e:  # a checkpoint or events that cannot be read: say so, stay put
                    self.notify(str(e), title="Replay", severity="error", timeout=15)
                finally:
                    self._seeking = None
        finally:
            self._seeker_on = False  # (no await since the loop's last look at _asked)

    async def _show(self, position: Position) -> None:
        rec = self.recording
        t, after = position.t, position.after
        self._running_shown = True  # the moment may be the world shown, run on from where it is
        try:
            moment = await rec.moment(math.nextafter(t, math.inf) if after and t < rec.end else t)
        finally:
            self._running_shown = False
        rows = rec.events_before(t if after else math.nextafter(t, -math.inf), EVENTS_SHOWN * 4)
        if position.seq is not None:
            rows = [r for r in rows if r["seq"] <= position.seq]
        self.moment, self.t = moment, t
        self.seq = rows[-1]["seq"] if rows else rec.checkpoints[0].seq
        left_behind = moment.world is not self.world
        self._swap(moment.world, rows[-EVENTS_SHOWN:])
        self._show_timeline()
        self.refresh_view()
        if isinstance(self.screen, DetailScreen):  # a detail open over the panels: the new moment at once
            self.screen.redraw()
        if left_behind:
            self._left_behind += 1
            self.call_after_refresh(self._collect_left_behind)

    def _collect_left_behind(self) -> None:
        """Collect the worlds seeks left behind (engine/replay.py builds with the cyclic
        collector paused), once the new moment is on screen: between seeks, or at once when
        a run of seeks has left several (each holds the memory of a whole world)."""
        if not self._left_behind:
            return
        if self.seeking and self._left_behind < COLLECT_AFTER:
            self.set_timer(PLAY_TICK_S, self._collect_left_behind)
            return
        self._left_behind = 0
        gc.collect()

    @property
    def world_is_steady(self) -> bool:
        return not self._running_shown

    def refresh_view(self) -> None:
        # While the world shown is run on to the next moment, a frame would show it half
        # way (and take in the events it publishes on the way): the last frame stands (a
        # detail open over the panels asks `world_is_steady` too).
        if not self._running_shown:
            super().refresh_view()

    def _swap(self, world: Any, rows: list[dict[str, Any]]) -> None:
        if world is not self.world:
            self._events.close()
            self.world = world
            remember_history(world)
            self._events = world.bus.subscribe(kinds=UI_KINDS, maxlen=2_000)
        else:
            # The same world run on to the new position: what it published on the way is
            # in the recorded rows below already, so the frame must not add it again.
            self._events.drain()
        self.meter.samples.clear()  # its per-minute rates are of this moment alone
        lines = []
        for row in rows:
            ev = as_event(row)
            line = None if ev is None else describe_event(ev)
            if line is not None:
                lines.append((row["kind"], line))
        self._events_panel.show_lines(lines)

    def _show_timeline(self) -> None:
        rec = self.recording
        self._timeline.show(TimelineState(
            start=rec.start, end=rec.end, t=self.t, checkpoint=rec.checkpoint_index(self.t),
            checkpoints=len(rec.checkpoints), playing=self.playing, speed=self.speed, exact=self.moment.exact,
            live=self.follow and rec.is_live(), marks=self._marks))

    def action_step_event(self, direction: int) -> None:
        aim = self.aim()
        seq = self._last_event(aim)
        row = self.recording.next_event(seq, aim.t) if direction > 0 else \
            self.recording.previous_event(seq, aim.t)
        if row is None:
            self.bell()
            return
        self.seek(row["t"], seq=row["seq"], after=True)

    def action_step_checkpoint(self, direction: int) -> None:
        at = self.aim().t
        times = sorted({c.t for c in self.recording.checkpoints})
        if direction > 0:
            later = [t for t in times if t > at]
            target = later[0] if later else None
        else:
            earlier = [t for t in times if t < at]
            target = earlier[-1] if earlier else None
        if target is None:
            self.bell()
            return
        self.seek(target)

    def action_step_minute(self, direction: int) -> None:
        self.seek(self.aim().t + 60.0 * direction)

    def action_first(self) -> None:
        self.seek(self.recording.start)

    def action_last(self) -> None:
        self.seek(self.recording.end)

    def action_jump(self) -> None:
        rec = self.recording

        def check(args: dict[str, Any]) -> Result:
            try:
                t = parse_at(args["time"])
            except ValueError as e:
                return Result(False, None, str(e).removeprefix("--at: "), "invalid", "time")
            if not rec.start <= t <= rec.end:
                return Result(False, None, f"the recording runs from T+{rec.start:g}s to T+{rec.end:g}s",
                              "invalid", "time")
            return Result(True, t)

        def chosen(result: Result | None) -> None:
            if result is not None:
                self.seek(result.value)

        self.push_screen(FormScreen("Jump to", [Field("time", "time", "text", placeholder="01:23:45, T+5m or seconds")],
                                    check, ok="Jump", blink=self.cursor_blink_forms), chosen)

    # -- play ---------------------------------------------------------------------------------------
    def action_toggle_pause(self) -> None:
        self.playing = not self.playing and self.aim().t < self.recording.end
        self._show_timeline()

    def action_faster(self) -> None:
        self.speed = next((s for s in SPEEDS if s > self.speed), self.speed)
        self._show_timeline()

    def action_slower(self) -> None:
        self.speed = next((s for s in reversed(SPEEDS) if s < self.speed), self.speed)
        self._show_timeline()

    def _play_tick(self) -> None:
        if not self.playing or self.seeking:
            return  # while a seek is under way, a tick is skipped: play never queues behind it
        if self.t >= self.recording.end:
            self.playing = False
            self._show_timeline()
            return
        self.seek(self.t + self.speed * PLAY_TICK_S)

    def _follow(self) -> None:
        before = self.recording.end
        self.recording.refresh()
        self._marks["checkpoint"] = [c.t for c in self.recording.checkpoints]
        if self.recording.end != before:
            self._show_timeline()

    def _load_marks(self) -> None:
        marks = self.recording.markers()  # reads every event: a thread, not the UI's loop
        self.call_from_thread(self._marks_loaded, marks)

    def _marks_loaded(self, marks: dict[str, list[float]]) -> None:
        self._marks.update(marks)
        self._show_timeline()

    # -- fork ---------------------------------------------------------------------------------------
    def action_fork(self) -> None:
        rec = self.recording
        at = self.t  # the moment shown as the form opens is the one forked
        self.playing = False
        self._show_timeline()
        default = str(rec.path.with_name(f"{rec.path.stem}-fork-{int(at)}.db"))

        async def check(args: dict[str, Any]) -> Result:
            from engine.config import ConfigError
            from engine.fork import fork_journal
            from engine.paths import OutputPathError

            try:
                # A thread: the fork runs the recording on in an event loop of its own, and
                # the app's loop goes on drawing meanwhile.
                result = await anyio.to_thread.run_sync(fork_journal, rec.path, at, args["journal"])
            except (ConfigError, JournalError, OutputPathError) as e:
                return Result(False, None, str(e), "invalid", "journal")
            return Result(True, result.path)

        def chosen(result: Result | None) -> None:
            if result is not None:
                self.forked = result.value
                self.exit(result.value)

        self.push_screen(FormScreen(f"Fork at T+{at:g}s", [Field("journal", "new journal", "text", default)],
                                    check, ok="Fork and open", blink=self.cursor_blink_forms), chosen)


def _read_only(self: ReplayApp, *args: Any) -> None:
    self.notify(READ_ONLY, title="Replay", severity="warning")


for _name in STEERING_ACTIONS:
    setattr(ReplayApp, f"action_{_name}", _read_only)


def run_replay(path: str | Path, at: float | None = None) -> Path | None:
    """Open the replay; the path of a fork made from it, if it ended by forking."""
    app = ReplayApp(Recording(path), at)
    app.run()
    return app.forked
