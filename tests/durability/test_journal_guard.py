"""The journal's guard in one process (issue 13): the writer's lock, the read-only check,
and a headless run's policy when commits fail (end with exit 3 after the retry window, or
resume by itself when a retry works). The same, across real processes, is in
test_fail_safely.py."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import sqlite3
import time

import anyio
import pytest
from rich.console import Console

from engine.clock import VirtualClock
from engine.config import load_scenario
from engine.headless import Interrupts, run_headless
from engine.journal import Journal, JournalError, JournalLocked, read_state
from engine.resume import resume_world
from engine.journal_file import inspect, sidecar, writer_of
from engine.world import World

pytestmark = pytest.mark.anyio


def default_world() -> World:
    return World(load_scenario("default"), clock=VirtualClock())


async def test_one_writer_per_journal_in_one_process_too(tmp_path):
    path = tmp_path / "w.db"
    world = default_world()
    journal = world.attach_journal(path)
    await world.run(30.0)
    assert writer_of(path) == f"process {os.getpid()}"
    with pytest.raises(JournalLocked, match=f"is being written by process {os.getpid()}"):
        resume_world(path, virtual=True)
    with pytest.raises(JournalLocked, match="is being written by"):
        Journal(default_world(), path, fresh=False)
    with pytest.raises(JournalError, match="exists"):
        default_world().attach_journal(path)
    # Readers stay allowed while it writes.
    meta, tables = read_state(path)
    assert json.loads(tables["world"]["clock"])["now"] == pytest.approx(30.0)
    journal.close()
    assert writer_of(path) is None
    again = resume_world(path, virtual=True)
    assert again.journal.lost is None and again.journal.last_commit.n == journal.last_commit.n
    again.journal.close()


async def test_the_mark_follows_each_commit_and_a_refusal_keeps_it(tmp_path):
    path = tmp_path / "w.db"
    world = default_world()
    journal = world.attach_journal(path)
    await world.run(20.0)
    pid, n, t, created = sidecar(path).read_text().split()
    assert int(pid) == os.getpid() and int(n) == journal.last_commit.n and float(t) == journal.last_commit.t
    assert created == read_state(path)[0]["created"]
    journal.close()
    before = sidecar(path).read_text()
    # A resume refused after taking the lock (its config no longer loads) leaves the mark.
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = '{' WHERE key = 'config'")
    db.commit()
    db.close()
    with pytest.raises(JournalError, match="no longer loads"):
        resume_world(path, virtual=True)
    assert sidecar(path).read_text().split()[1:] == before.split()[1:]


def test_inspect_refuses_what_is_not_a_journal_and_writes_nothing(tmp_path):
    cases = {
        "empty.db": b"",
        "text.db": b"hello\n" * 50,
        "almost.db": b"SQLite format 3\x00" + b"\x00" * 100,  # the header, then nothing sane
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "dir.db").mkdir()
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in tmp_path.iterdir() if p.is_file()}
    for name in [*cases, "dir.db", "missing.db"]:
        with pytest.raises(JournalError):
            inspect(tmp_path / name)
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in tmp_path.iterdir() if p.is_file()}
    assert after == before and sorted(p.name for p in tmp_path.iterdir()) == sorted([*cases, "dir.db"])


async def _fill_disk_after(journal: Journal, commits: int) -> None:
    """What a full disk does to SQLite ("database or disk is full"), by capping its pages."""
    while journal.commits < commits:
        await anyio.sleep(0.005)
    pages = journal.db.execute("PRAGMA page_count").fetchone()[0]
    journal.db.execute(f"PRAGMA max_page_count = {pages}")


async def test_a_headless_run_ends_when_the_journal_keeps_failing(tmp_path):
    world = default_world()
    journal = world.attach_journal(tmp_path / "w.db", commit_interval=0.01)
    console = Console(file=io.StringIO())
    async with anyio.create_task_group() as tg:
        tg.start_soon(_fill_disk_after, journal, 3)
        started = time.monotonic()
        code, report = await run_headless(world, None, console=console, journal_retry=0.5)
        took = time.monotonic() - started
    assert code == 3
    assert report["cut_short"].startswith("the journal failed and retries did not succeed for 0.5 s")
    assert "full" in report["cut_short"]
    assert took < 30
    # The file holds the world as of its last commit, whole, and resumes.
    resumed = resume_world(tmp_path / "w.db", virtual=True)
    assert resumed.journal.last_commit == journal.last_commit
    assert all(resumed.invariants().values())
    resumed.journal.close()


async def test_a_headless_run_resumes_by_itself_when_a_retry_works(tmp_path):
    world = default_world()
    journal = world.attach_journal(tmp_path / "w.db", commit_interval=0.01)
    controls = world.bus.subscribe(["world_control"])
    interrupts = Interrupts()  # not installed: the test plays the signal
    console = Console(file=io.StringIO())

    async def fail_then_recover() -> None:
        await _fill_disk_after(journal, 3)
        while journal.failed is None:
            await anyio.sleep(0.005)
        assert world.paused
        failed_at = journal.commits
        journal.db.execute("PRAGMA max_page_count = 1073741823")  # room again
        while world.paused or journal.commits < failed_at + 3:
            await anyio.sleep(0.005)
        interrupts._on_signal(signal.SIGINT, None)

    async with anyio.create_task_group() as tg:
        tg.start_soon(fail_then_recover)
        code, report = await run_headless(world, None, console=console, journal_retry=30.0,
                                          interrupts=interrupts)
    assert code == 130 and report["cut_short"] == "interrupted by SIGINT"
    what = [e.what for e in controls.drain()]
    assert what.index("paused") < what.index("resumed")
    assert journal.failed is None and all(report["invariants"].values())
