"""The journal: what it records, how it resumes, and what happens when it cannot write.

A full journal (SQLite's own "database or disk is full", reached by capping its pages)
pauses the world with a clear message; nothing is half-applied; once there is room again,
commits go on, and the operator resumes the world.
"""

from __future__ import annotations

import json

import anyio
import pytest

from engine.clock import VirtualClock
from engine.config import load_scenario
from engine.export import export_journal
from engine.journal import iter_events, read_state
from engine.resume import resume_world
from engine.world import World

pytestmark = pytest.mark.anyio


def default_world(clock=None) -> World:
    return World(load_scenario("default"), clock=clock or VirtualClock())


async def test_flush_records_events_and_state_and_resume_rebuilds_it(tmp_path):
    world = default_world()
    world.attach_journal(tmp_path / "w.db")
    await world.run(300.0)
    assert world.journal.failed is None
    meta, tables = read_state(tmp_path / "w.db")
    assert json.loads(tables["world"]["clock"])["now"] == 300.0
    events = list(iter_events(tmp_path / "w.db"))
    assert [e["seq"] for e in events] == list(range(1, world.bus.seq + 1))  # every event, in order
    assert {e["kind"] for e in events} >= {"scrip_transferred", "bid_placed", "oracle_resolved", "loan"}

    world.journal.close()  # one writer per journal: this one lets go before the resume writes
    again = resume_world(tmp_path / "w.db", virtual=True)
    # The resumed world holds exactly what the running one held at its last commit.
    assert again.ledger.scrip == world.ledger.scrip
    assert again.ledger.held == world.ledger.held
    assert again.ledger.rate_micro == world.ledger.rate_micro
    assert {a: (x.owner, x.version) for a, x in again.artifacts.by_id.items()} == {
        a: (x.owner, x.version) for a, x in world.artifacts.by_id.items()}
    assert set(again.oracle.bids) == set(world.oracle.bids)
    # The scorer remembers what it scored: a duplicate still scores 0 after the resume.
    scored = world.oracle.scorer.memory()
    assert scored["seen"] and again.oracle.scorer.memory() == scored
    assert again.oracle.scorer._recent == world.oracle.scorer._recent
    assert set(again.market.open) == set(world.market.open)
    assert {a.id: a.config_artifact.content for a in again.agents.values()} == {
        a.id: a.config_artifact.content for a in world.agents.values()}
    now = world.clock.now()
    for p, b in world.ledger.buckets.items():
        assert again.ledger.buckets[p].peek(now) == pytest.approx(b.peek(now))
    assert again.invariants() == world.invariants()
    again.journal.close()


async def test_a_full_journal_pauses_the_world_and_loses_nothing_committed(tmp_path):
    world = default_world()
    # The test commits by hand; the journal's own cadence (every few ms of real time) would
    # otherwise hit the full disk first and pause the world before time reaches the mark.
    journal = world.attach_journal(tmp_path / "w.db", commit_interval=60.0)
    controls = world.bus.subscribe(["world_control"])
    async with anyio.create_task_group() as tg:
        tg.start_soon(world.run)
        while world.clock.now() < 30.0:
            await anyio.lowlevel.checkpoint()
        assert await journal.flush()
        committed = json.loads(read_state(tmp_path / "w.db")[1]["world"]["clock"])["now"]
        # No room left: SQLite answers "database or disk is full" on the next write.
        pages = journal.db.execute("PRAGMA page_count").fetchone()[0]
        journal.db.execute(f"PRAGMA max_page_count = {pages}")
        while world.clock.now() < committed + 30.0:
            await anyio.lowlevel.checkpoint()
        assert not await journal.flush()
        assert world.paused and "full" in journal.failed
        paused = [e for e in controls.drain() if e.what == "paused"]
        assert len(paused) == 1 and "journal failed" in paused[0].detail and "nothing is lost" in paused[0].detail
        # The file still holds the last good commit, whole.
        meta, tables = read_state(tmp_path / "w.db")
        assert json.loads(tables["world"]["clock"])["now"] == committed
        # Room again: the next commit writes everything that waited, and the operator resumes.
        journal.db.execute("PRAGMA max_page_count = 1073741823")
        assert await journal.flush() and journal.failed is None
        assert world.invoke("world", "resume").ok
        tg.cancel_scope.cancel()
    journal.close()
    resumed = resume_world(tmp_path / "w.db", virtual=True)
    assert all(resumed.invariants().values())
    assert resumed.clock.now() >= committed + 30.0
    resumed.journal.close()


async def test_export_writes_events_and_windows_for_pandas(tmp_path):
    config = load_scenario("default")
    config = config.model_copy(update={"metrics": config.metrics.model_copy(update={"interval": 10.0, "keep": 3})})
    world = World(config, clock=VirtualClock())
    world.attach_journal(tmp_path / "w.db")
    await world.run(120.0)
    world.journal.close()
    for fmt in ("jsonl", "csv"):
        events, windows = export_journal(tmp_path / "w.db", fmt)
        assert events.exists() and windows.exists()
    lines = (tmp_path / "w.events.jsonl").read_text().splitlines()
    assert len(lines) == world.bus.seq
    first = json.loads(lines[0])
    assert {"seq", "t", "kind"} <= first.keys()
    header = (tmp_path / "w.events.csv").read_text().splitlines()[0].split(",")
    assert header[:3] == ["seq", "t", "kind"] and "amount" in header
    # Every window of the run, though the world kept only the last 3 in memory.
    windows = [json.loads(x) for x in (tmp_path / "w.windows.jsonl").read_text().splitlines()]
    assert [w["index"] for w in windows] == list(range(12)) and len(world.metrics.windows) == 3
    assert windows[-3:] == [json.loads(json.dumps(w)) for w in world.metrics.windows]
    assert len((tmp_path / "w.windows.csv").read_text().splitlines()) == 1 + 12


def journal_on_a_hand_clock(tmp_path):
    """A journal committing every 0.1 s by a monotonic clock the test moves (`now[0]`),
    its first commit due at 0.1."""
    world = default_world()
    journal = world.attach_journal(tmp_path / "w.db", commit_interval=0.1)
    now = [0.0]
    journal._monotonic = lambda: now[0]
    journal._last_commit = 0.0
    journal._schedule()
    return world, journal, now


async def test_a_checkpoint_commits_first_when_a_commit_is_about_to_fall_due(tmp_path):
    """A commit falling due during a checkpoint's capture would be late by the capture, and
    the cadence would then fall due early at every commit after it: the checkpoint commits
    first when one is due within half an interval, and not otherwise."""
    world, journal, now = journal_on_a_hand_clock(tmp_path)
    now[0] = 0.02  # the commit is 80 ms away: no commit
    journal.checkpoint(world.clock.now(), "operator")
    assert journal.commits == 0 and journal.checkpoints == 1
    now[0] = 0.07  # 30 ms away: commit first, and the cadence starts from here
    journal.checkpoint(world.clock.now() + 1.0, "operator")
    assert journal.commits == 1 and journal.checkpoints == 2
    assert journal._due == pytest.approx(0.07 + 0.1)  # early counts as on time, not as slack
    journal.close()


async def test_commits_fall_due_early_by_the_most_a_recent_one_overran(tmp_path):
    # The commit interval is a bound: a commit lands within it of the last one unless it
    # takes longer, from falling due to being on disk, than each of the last 30 did.
    world, journal, now = journal_on_a_hand_clock(tmp_path)
    assert journal._due == world.due_at == pytest.approx(0.1)
    landed = [0.0]

    def commit_taking(seconds: float) -> None:
        now[0] = journal._due + seconds  # it began at the due moment and took this long
        assert world.due_at <= now[0]
        world.run_due()  # what the first agent back in its loop does (or the journal's timer)
        landed.append(now[0])

    commit_taking(0.02)
    assert journal._due == pytest.approx(0.12 + 0.1 - 0.02)  # early by the 20 ms it took
    commit_taking(0.01)
    commit_taking(0.02)
    assert [round(b - a, 6) for a, b in zip(landed[1:], landed[2:])] == [0.09, 0.1]  # never over 0.1
    commit_taking(0.3)  # a stall: the margin is capped at half the interval
    assert journal._due == pytest.approx(landed[-1] + 0.05)
    for _ in range(30):  # the stall leaves the window of recent commits
        commit_taking(0.01)
    assert journal._due == pytest.approx(landed[-1] + 0.09)
    assert journal.commits == 34 and journal.failed is None
    journal.close()
