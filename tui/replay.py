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
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from textual import events
from textual.binding import Binding
from textual.widgets import Footer

from engine.actions import Result
from engine.agent import remember_history
from engine.fork import parse_at
from engine.replay import Moment, Recording, as_event

from .app import UI_KINDS, EcologyApp
from .format import describe_event
from .screens.form import Field, FormScreen
from .widgets.timeline import Timeline, TimelineState

PLAY_TICK_S = 0.25  # real seconds between two steps of play
FOLLOW_S = 2.0  # real seconds between two looks at a journal being written
SPEEDS = (1, 2, 5, 10, 30, 60, 120, 300, 600)
EVENTS_SHOWN = 200

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
        await self.go(self._initial)

    # -- moving ---------------------------------------------------------------------------------------
    async def go(self, t: float, seq: float | None = None, after: bool = False) -> None:
        """Show the world at `t` (with `after`, at the end of that instant) and the events
        up to `seq` (default: every event before `t`, or at it with `after`)."""
        rec = self.recording
        t = min(max(t, rec.start), rec.end)
        moment = await rec.moment(math.nextafter(t, math.inf) if after and t < rec.end else t)
        self.moment, self.t = moment, t
        rows = rec.events_before(t if after else math.nextafter(t, -math.inf), EVENTS_SHOWN * 4)
        if seq is not None:
            rows = [r for r in rows if r["seq"] <= seq]
        self.seq = rows[-1]["seq"] if rows else rec.checkpoints[0].seq
        self._swap(moment.world, rows[-EVENTS_SHOWN:])
        self._show_timeline()
        self.refresh_view()

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

    async def action_step_event(self, direction: int) -> None:
        row = self.recording.next_event(self.seq, self.t) if direction > 0 else \
            self.recording.previous_event(self.seq, self.t)
        if row is None:
            self.bell()
            return
        await self.go(row["t"], seq=row["seq"], after=True)

    async def action_step_checkpoint(self, direction: int) -> None:
        times = sorted({c.t for c in self.recording.checkpoints})
        if direction > 0:
            later = [t for t in times if t > self.t]
            target = later[0] if later else None
        else:
            earlier = [t for t in times if t < self.t]
            target = earlier[-1] if earlier else None
        if target is None:
            self.bell()
            return
        await self.go(target)

    async def action_step_minute(self, direction: int) -> None:
        await self.go(self.t + 60.0 * direction)

    async def action_first(self) -> None:
        await self.go(self.recording.start)

    async def action_last(self) -> None:
        await self.go(self.recording.end)

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

        async def chosen(result: Result | None) -> None:
            if result is not None:
                await self.go(result.value)

        self.push_screen(FormScreen("Jump to", [Field("time", "time", "text", placeholder="01:23:45, T+5m or seconds")],
                                    check, ok="Jump", blink=self.cursor_blink_forms), chosen)

    # -- play ---------------------------------------------------------------------------------------
    def action_toggle_pause(self) -> None:
        self.playing = not self.playing and self.t < self.recording.end
        self._show_timeline()

    def action_faster(self) -> None:
        self.speed = next((s for s in SPEEDS if s > self.speed), self.speed)
        self._show_timeline()

    def action_slower(self) -> None:
        self.speed = next((s for s in reversed(SPEEDS) if s < self.speed), self.speed)
        self._show_timeline()

    async def _play_tick(self) -> None:
        if not self.playing:
            return
        if self.t >= self.recording.end:
            self.playing = False
            self._show_timeline()
            return
        await self.go(self.t + self.speed * PLAY_TICK_S)

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
        default = str(rec.path.with_name(f"{rec.path.stem}-fork-{int(self.t)}.db"))

        def check(args: dict[str, Any]) -> Result:
            from concurrent.futures import ThreadPoolExecutor

            from engine.config import ConfigError
            from engine.fork import fork_journal
            from engine.journal_file import JournalError
            from engine.paths import OutputPathError

            try:
                # Its own thread: the fork runs the recording on in an event loop of its own.
                with ThreadPoolExecutor(1) as pool:
                    result = pool.submit(fork_journal, rec.path, self.t, args["journal"]).result()
            except (ConfigError, JournalError, OutputPathError) as e:
                return Result(False, None, str(e), "invalid", "journal")
            return Result(True, result.path)

        def chosen(result: Result | None) -> None:
            if result is not None:
                self.forked = result.value
                self.exit(result.value)

        self.push_screen(FormScreen(f"Fork at T+{self.t:g}s", [Field("journal", "new journal", "text", default)],
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
