"""Metrics windows (issue 2, item 7): closed every interval with the documented fields;
the Gini coefficient and the richest tenth's share on known inputs; what the app's charts
read (issue 19): scrip moved and its velocity, minted per hour, loans defaulted and repaid,
LLM dollars, each counted in the window it happened in."""

from __future__ import annotations


import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecotest import SCRIPTS, make_world, run_world, steps
from engine.actions import Noop, Sleep
from engine.clock import RealClock
from engine.metrics import gini, top_share

WINDOW_FIELDS = {
    "index", "start", "end", "actions", "actions_per_s", "scrip_supply", "held", "minted",
    "minted_total", "compute_debt", "frozen", "agents", "gini", "invariants_ok",
    "minted_per_hour", "moved", "velocity", "top10_share", "defaults", "repayments", "llm_dollars", "llm_spent",
}


@pytest.mark.parametrize(
    "values, expected",
    [
        ([], 0.0),
        ([0, 0, 0], 0.0),
        ([5], 0.0),
        ([1, 1, 1, 1], 0.0),
        ([0, 0, 0, 1], 0.75),  # (n-1)/n: one holds everything
        ([0, 10], 0.5),
        ([10, 40], 0.3),
        ([1, 2, 3, 4, 5], 4 / 15),  # sum|xi-xj| / (2 n^2 mean) = 40 / 150
        ([3, 1, 2], 2 / 9),
    ],
)
def test_gini_on_known_inputs(values, expected):
    assert gini(values) == pytest.approx(expected, abs=1e-12)


def test_gini_takes_any_iterable_in_any_order():
    assert gini(iter([5, 4, 3, 2, 1])) == pytest.approx(gini([1, 2, 3, 4, 5]))
    assert gini(x for x in (0, 0, 7)) == pytest.approx(2 / 3)


@given(st.lists(st.integers(0, 1000), min_size=1, max_size=50), st.integers(1, 20))
def test_gini_is_bounded_and_scale_free(values, k):
    g = gini(values)
    assert 0.0 <= g <= 1.0 - 1.0 / len(values) + 1e-12
    assert gini([v * k for v in values]) == pytest.approx(g, abs=1e-12)


@pytest.mark.anyio
async def test_windows_close_every_interval_with_the_documented_fields():
    world = make_world([{"scrip": 10}, {"scrip": 10, "rate": 1.0, "capacity": 10.0}], metrics={"interval": 10.0})
    SCRIPTS["a001"] = lambda view, brain: Sleep(seconds=0.7)  # never on a window edge
    SCRIPTS["a002"] = steps(Sleep(seconds=5.0), (Noop(), 30.0), Noop())  # frozen from 5 to 25 (-20 at 1/s)
    closed = world.bus.subscribe(["window_closed"])
    await run_world(world, 34.5, [(15.0, lambda: world.invoke("ledger", "transfer", to="a001", amount=30))])
    windows = list(world.metrics.windows)
    assert [(w["index"], w["start"], w["end"]) for w in windows] == [
        (0, 0.0, 10.0), (1, 10.0, 20.0), (2, 20.0, 30.0), (3, 30.0, 34.5),  # the last, partial, at the end
    ]
    for w in windows:
        assert WINDOW_FIELDS <= set(w)
        assert w["invariants_ok"] is True
        assert w["scrip_supply"] == 120 and w["held"] == 0 and w["minted"] == 0 and w["minted_total"] == 0
        assert w["agents"] == 2
        assert w["actions_per_s"] == pytest.approx(w["actions"] / (w["end"] - w["start"]), abs=1e-3)
    assert sum(w["actions"] for w in windows) == world.total_actions
    # a001 acts every 0.7 s: 15 turns in [0, 10), 14 in [10, 20), 14 in [20, 30), 7 in [30, 34.5).
    # a002: two turns in the first window (t=0 and t=5) and two at its thaw (t=25: noop, park).
    assert [w["actions"] for w in windows] == [15 + 2, 14, 14 + 2, 7]
    assert [w["frozen"] for w in windows] == [1, 1, 0, 0]
    assert [w["compute_debt"] for w in windows] == pytest.approx([15.0, 5.0, 0.0, 0.0])
    assert [w["gini"] for w in windows] == pytest.approx([0.0, 0.3, 0.3, 0.3])  # 40 vs 10 from t=15
    assert [e.window["index"] for e in closed.drain()] == [0, 1, 2, 3]
    # The operator's 30 scrip at t=15 is the only payment: moved in window 1, a quarter of supply.
    assert [w["moved"] for w in windows] == [0, 30, 0, 0]
    assert [w["velocity"] for w in windows] == [0.0, 0.25, 0.0, 0.0]
    # Two agents: the richest tenth is one of them, 40 of the agents' 50 scrip after the gift.
    assert [w["top10_share"] for w in windows] == pytest.approx([0.5, 0.8, 0.8, 0.8])
    assert all(w["minted_per_hour"] == 0 and w["defaults"] == 0 and w["llm_dollars"] == 0 for w in windows)


@pytest.mark.parametrize(
    "values, expected",
    [
        ([], 0.0),
        ([0, 0], 0.0),
        ([7], 1.0),
        ([1] * 10, 0.1),  # ten equal holders: the richest one holds a tenth
        ([1] * 11, 2 / 11),  # a tenth of 11 rounds up to two holders
        ([0, 0, 0, 9], 1.0),
        ([5, 1, 1, 1, 1, 1, 1, 1, 1, 1], 5 / 14),
    ],
)
def test_top_share_on_known_inputs(values, expected):
    assert top_share(values) == pytest.approx(expected, abs=1e-12)


@pytest.mark.anyio
async def test_windows_count_loans_minting_and_llm_dollars_where_they_happen():
    """Two loans: a002 keeps its principal and is collected in full at due (a repayment in
    window 0); a003 gives its principal away and defaults at due (window 1). Scrip minted
    and LLM dollars spent in window 2 show there, as rates and amounts."""
    world = make_world([{"scrip": 0}, {"scrip": 0}, {"scrip": 0}], llm_budget=1.0,
                       metrics={"interval": 10.0})

    def lend() -> None:
        for debtor, due in (("a002", 5.0), ("a003", 12.0)):
            r = world.invoke("contracts", "offer", {"debtor": debtor, "principal": 6, "rate_per_day": 0.0, "due_in": due})
            assert r.ok, r
            r = world.invoke("contracts", "accept", principal=debtor, contract=r.value["contract"])
            assert r.ok, r
        r = world.invoke("ledger", "transfer", principal="a003", to="a001", amount=6)
        assert r.ok, r

    def mint_and_think() -> None:
        world.ledger.mint("a001", 4)
        world.ledger.spend_llm(0.25)

    await run_world(world, 30.0, [(1.0, lend), (25.0, mint_and_think)])
    windows = list(world.metrics.windows)
    assert [w["repayments"] for w in windows] == [1, 0, 0]
    assert [w["defaults"] for w in windows] == [0, 1, 0]
    # Window 0: the principals (held, then paid out, are not payments between principals)
    # do not count; a003's gift of 6 and a002's collection of 6 do.
    assert [w["moved"] for w in windows] == [12, 0, 0]
    assert [w["minted"] for w in windows] == [0, 0, 4]
    assert [w["minted_per_hour"] for w in windows] == [0.0, 0.0, 4 * 360.0]
    assert [w["llm_dollars"] for w in windows] == [0.0, 0.0, 0.25]
    assert [w["llm_spent"] for w in windows] == [0.0, 0.0, 0.25]


@pytest.mark.anyio
async def test_windows_keep_only_the_latest():
    world = make_world(metrics={"interval": 1.0, "keep": 3})
    await run_world(world, 10.5)
    assert [w["index"] for w in world.metrics.windows] == [8, 9, 10]
    assert world.metrics.windows[-1]["end"] == 10.5


@pytest.mark.anyio
async def test_run_ending_on_a_window_edge_has_no_empty_window():
    """Found by this suite: the run ended with an extra zero-length window (30.0, 30.0)."""
    world = make_world(metrics={"interval": 10.0})
    await run_world(world, 30.0)
    spans = [(w["start"], w["end"]) for w in world.metrics.windows]
    assert spans == [(0.0, 10.0), (10.0, 20.0), (20.0, 30.0)]


@pytest.mark.anyio
async def test_a_close_slower_than_a_window_covers_the_jump_and_the_world_runs_on():
    """Issue 13: at a speed where closing a window takes longer than a window, the metrics
    loop closed windows forever without yielding (`--speed 4e5` never ended). Here each
    close takes a millisecond of this clock, a hundred windows at 1e6: each close covers
    the whole jump since the last, and the world runs on between closes."""
    real = {"t": 0.0, "reads": 0}

    def monotonic() -> float:
        real["reads"] += 1
        if real["reads"] > 200_000:  # ten times what the run needs: a spinning loop fails here
            raise RuntimeError("the metrics task never yielded")
        real["t"] += 1e-6  # a microsecond per read: a world second
        return real["t"]

    world = make_world([{"scrip": 10}], metrics={"interval": 10.0, "keep": 100_000},
                       clock=RealClock(1_000_000, monotonic=monotonic))
    close = world.metrics.close_window

    def slow_close(now: float, final: bool = False):
        window = close(now, final)
        real["t"] += 1e-3
        return window

    world.metrics.close_window = slow_close
    SCRIPTS["a001"] = lambda view, brain: Sleep(seconds=1.0)
    await run_world(world, 200_000.0)
    windows = list(world.metrics.windows)
    assert world.clock.now() >= 200_000.0
    assert windows[0]["index"] == 0 and windows[-1]["end"] >= 200_000.0  # every window kept
    assert all(a["end"] == b["start"] for a, b in zip(windows, windows[1:]))  # they tile the run
    spans = [w["end"] - w["start"] for w in windows]
    assert min(spans) >= 10.0 and max(spans) >= 100 * 10.0  # one window for a hundred intervals
    assert len(windows) <= 200_000 / 10.0 / 50  # far fewer closes than intervals passed
    # The agent ran between closes, to the end: the metrics task did not hold the loop.
    assert sum(w["actions"] for w in windows[len(windows) // 2:]) >= len(windows) // 10
    assert all(w["invariants_ok"] for w in windows)
