"""The metrics panel's charts (issue 19): y axes from zero with round ticks, a world-time
x axis, paired series (frozen agents on a right-hand axis), legends with the latest
window's values, and a key that switches the span every chart follows."""

from __future__ import annotations

import re

import pytest
from tuikit import make_app, shown

from tui.widgets.metrics import CHARTS, Chart, MetricsPanel, time_ticks, y_axis

pytestmark = pytest.mark.anyio
WIDE = (160, 45)


@pytest.mark.parametrize(
    "largest, ticks, whole, top, expected",
    [
        (18, 1, True, None, [0, 20]),  # 18 frozen agents fill 90% of the axis, from zero
        (21, 1, True, None, [0, 25]),
        (2007, 2, True, None, [0, 2500]),
        (0.38, 2, False, None, [0, 0.2, 0.4]),
        (4, 2, True, None, [0, 2, 4]),
        (0.9, 4, False, 1.0, [0, 0.25, 0.5, 0.75, 1.0]),  # a share's axis ends at 1
        (0, 3, False, None, [0, 1]),  # nothing yet: still an axis
    ],
)
def test_y_axes_start_at_zero_and_end_just_above_the_data(largest, ticks, whole, top, expected):
    axis = y_axis(largest, ticks, whole, top)
    assert axis == pytest.approx(expected)
    assert axis[0] == 0 and axis[-1] >= largest and len(axis) - 1 <= max(ticks, 1)
    if whole:
        assert all(v == int(v) for v in axis)


def test_time_ticks_are_round_world_times_within_the_span():
    assert time_ticks(0, 285, 4) == [0, 120, 240]
    assert time_ticks(300, 3900, 6) == [600, 1200, 1800, 2400, 3000, 3600]
    ticks = time_ticks(12.5, 97.0, 4)
    assert ticks == [30, 60, 90] and all(12.5 <= t <= 97.0 for t in ticks)


def plot_text(chart: Chart) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", chart.plt.build())


async def test_charts_draw_axes_legends_and_follow_the_span(app, world):
    windows = list(world.metrics.windows)
    last = windows[-1]
    async with app.run_test(size=WIDE) as pilot:
        await pilot.press("7")
        panel = app.query_one(MetricsPanel)
        text = await shown(pilot)
        assert "span 10 min" in text and f"{len(windows)} windows of 10s, 00:00–04:45" in text
        debt = app.query_one("#chart-debt", Chart)
        plot = plot_text(debt)
        rows = plot.splitlines()
        # Both y axes reach zero at the bottom of the frame; frozen agents have their own.
        assert re.search(r"^\s*0┤.*├0\s*$", rows[-3]), rows[-3]
        most_frozen = max(w["frozen"] for w in windows)
        top = int(re.search(r"├(\d+)\s*$", rows[1]).group(1))  # the right axis: frozen agents
        assert most_frozen <= top < 2 * most_frozen  # from zero, filled at least half way
        assert "00:00" in rows[-1] and "04:00" in rows[-1]  # world time along the bottom
        # The legend under each chart is the latest window's value of each series.
        assert f"frozen → [b]{last['frozen']}[/b]" in debt.border_subtitle
        assert f"supply [b]{last['scrip_supply']:,}[/b]" in app.query_one("#chart-scrip", Chart).border_subtitle
        assert len(list(app.query(Chart))) == len(CHARTS) == 8
        # w: the last hour (the world is younger: every window), then all, then 10 min again.
        await pilot.press("w")
        assert panel.span_name() == "1 hour" and "span 1 hour" in await shown(pilot)
        await pilot.press("w")
        assert panel.span_name() == "all"
        await pilot.press("w")
        assert panel.span_name() == "10 min"


@pytest.fixture
def older_world():
    """The demo world run to 20 minutes instead of 4:45."""
    from demo import demo_world

    return demo_world(until=1200.0)


async def test_the_span_cuts_the_windows_charted(older_world):
    world = older_world
    app = make_app(world)
    async with app.run_test(size=WIDE) as pilot:
        await pilot.press("7")
        panel = app.query_one(MetricsPanel)
        windows, x0, x1 = panel.charted(world)
        assert x1 - x0 == pytest.approx(600.0) and all(w["end"] >= x0 for w in windows)
        assert len(windows) == 61  # 60 windows of 10 s, and the one that ends on the edge
        await pilot.press("w")
        windows, x0, x1 = panel.charted(world)
        assert len(windows) == len(world.metrics.windows) and x0 == world.metrics.windows[0]["start"]
