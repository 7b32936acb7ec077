"""A recording cut short by kill -9 is replayed, exported and forked up to its last commit.

A real `ecology run --headless --journal` process records a seeded world on virtual time
and is killed with SIGKILL after a few commits: no end checkpoint, no last flush, its lock
sidecar left behind and its last commits perhaps only in the -wal. The recording then
opens for replay (its end is the last commit SQLite recovers), the world at moments up to
that end is the world the same seeded world has when run straight there, `export --at`
and `fork --at END` work on it, and the replay app shows its last moment. The killed
writer's lock died with it: nothing refuses the file as being written, and nothing here
writes to it.
"""

from __future__ import annotations

import copy
import json
import shutil
import signal
import sqlite3
from pathlib import Path

import anyio
import pytest
from test_fail_safely import digest, ecology, finish, run, wait_for_commits

from engine.checkpoint import capture
from engine.journal_file import readonly_uri, sidecar, writer_of
from engine.replay import Recording
from engine.world import World

SEED = 7
COMMITS = 12  # commits (0.1 s apart) before the kill: a few dozen checkpoints of world time


@pytest.fixture(scope="module")
def killed(tmp_path_factory) -> Path:
    """The journal of a headless run killed with SIGKILL after COMMITS commits, whose last
    commits are only in the -wal (the writer moves the -wal into the file every 2 s, so
    nearly always: a kill that finds them moved is tried again)."""
    for _ in range(3):
        journal = tmp_path_factory.mktemp("killed") / "world.db"
        writer = ecology("run", "--headless", "--scenario", "default", "--seed", str(SEED), "--virtual-time",
                         "--journal", str(journal))
        try:
            wait_for_commits(journal, writer, COMMITS)
        finally:
            writer.send_signal(signal.SIGKILL)
            code, err, _ = finish(writer, timeout=30)
        assert code == -signal.SIGKILL, err[-2000:]
        if in_the_file_alone(journal, tmp_path_factory.mktemp("scratch")) < last_commit(journal)[0]:
            return journal
    pytest.fail("no kill found commits only in the -wal")


def in_the_file_alone(journal: Path, scratch: Path) -> int:
    """The last commit the database file holds without its -wal (a copy is read)."""
    shutil.copy(journal, scratch / journal.name)
    try:
        db = sqlite3.connect(readonly_uri(scratch / journal.name), uri=True)
        try:
            row = db.execute("SELECT max(n) FROM commits").fetchone()
        finally:
            db.close()
    except sqlite3.Error:
        return 0  # not even the tables yet: everything is in the -wal
    return row[0] or 0


def files_of(journal: Path) -> dict[str, str]:
    """What the killed writer left, by content: the journal, its -wal and its lock sidecar."""
    return {p.name: digest(p) for p in (journal, journal.with_name(journal.name + "-wal"), sidecar(journal))
            if p.exists()}


def last_commit(journal: Path) -> tuple[int, float]:
    """(n, world t) of the last commit SQLite recovers from the files, as any reader sees it."""
    db = sqlite3.connect(readonly_uri(journal), uri=True)
    try:
        return db.execute("SELECT n, t FROM commits ORDER BY n DESC LIMIT 1").fetchone()
    finally:
        db.close()


def direct_worlds(rec: Recording, times: list[float]) -> list[dict]:
    """The same seeded world run straight to each of `times` (in order), captured at each."""
    world = World(rec.config)
    out = []

    async def go() -> None:
        for t in times:
            if t > world.clock.now():  # at 0: the world as built (a run would start its agents)
                await world.run(final_window=False, until=t)
            out.append(copy.deepcopy(capture(world)))  # (a capture shares the world's live dicts)

    anyio.run(go)
    return out


def test_the_killed_writer_left_no_live_lock_and_its_last_commit_is_the_end(killed):
    lock = sidecar(killed)
    assert lock.exists()  # left behind by the killed writer, with its mark
    pid, mark_n, mark_t, _ = lock.read_text().split()
    assert writer_of(killed) is None  # the OS lock died with the process
    rec = Recording(killed)
    assert not rec.is_live()
    n, t = last_commit(killed)
    # The mark is written just after each commit: the recovered last commit is that one, or
    # the one after it (killed between the two). Nothing the writer marked is missing.
    assert n in (int(mark_n), int(mark_n) + 1)
    assert rec.end == t and t >= float(mark_t) > 0
    assert len(rec.checkpoints) >= 3 and rec.checkpoints[-1].t <= rec.end
    assert not any(c.reason == "end" for c in rec.checkpoints)  # it never got to end


def test_replay_shows_the_world_run_straight_to_each_moment_up_to_the_end(killed):
    before = files_of(killed)
    rec = Recording(killed)
    cps = [c.t for c in rec.checkpoints]
    times = sorted({cps[0], (cps[0] + cps[1]) / 2, cps[len(cps) // 2], cps[-1], (cps[-1] + rec.end) / 2, rec.end})
    direct = direct_worlds(rec, times)
    for t, want in zip(times, direct):
        moment = anyio.run(rec.moment, t)
        assert moment.exact and moment.t == t
        assert capture(moment.world) == want, t
    assert files_of(killed) == before  # replay only read


def test_export_at_and_fork_at_the_end_work_on_it(killed, tmp_path):
    before = files_of(killed)
    rec = Recording(killed)
    end = rec.end
    (direct,) = direct_worlds(rec, [end])

    code, err, _ = run("export", str(killed), "--at", repr(end), "--out", str(tmp_path / "x"), timeout=60)
    assert code == 0, err[-2000:]
    (exported,) = tmp_path.glob("x.at-*.json")
    doc = json.loads(exported.read_text())
    assert doc["t"] == end and doc["exact"] is True
    assert doc["state"] == json.loads(json.dumps(direct, default=str))

    branch = tmp_path / "branch.db"
    code, err, _ = run("fork", str(killed), "--at", repr(end), "--journal", str(branch), timeout=60)
    assert code == 0, err[-2000:]
    fork = Recording(branch)
    assert fork.meta["parent"] == str(killed.resolve()) and float(fork.meta["forked_at"]) == end
    assert fork.checkpoints[0].t == end
    assert capture(anyio.run(fork.moment, end).world) == direct
    # The branch goes on as a world of its own.
    code, err, _ = run("run", "--headless", "--resume", str(branch), "--virtual-time", "--duration", "30",
                       "--report", str(tmp_path / "r.json"), timeout=120)
    assert code == 0, err[-2000:]
    report = json.loads((tmp_path / "r.json").read_text())
    assert all(report["invariants"].values()) and report["cut_short"] is None
    assert files_of(killed) == before  # the parent was only read


def test_the_replay_app_opens_it_and_shows_its_last_moment(killed):
    from tui.replay import ReplayApp

    before = files_of(killed)
    rec = Recording(killed)
    (direct,) = direct_worlds(rec, [rec.end])
    app = ReplayApp(rec, None, follow=True, refresh_s=5.0, cursor_blink=False)

    async def drive() -> None:
        async with app.run_test(size=(120, 36)) as pilot:
            await app.workers.wait_for_complete()
            assert app.t == rec.start
            await pilot.press("right_curly_bracket")  # the last moment
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert app.t == rec.end and app.moment.exact
            assert capture(app.world) == direct
            assert not app._timeline.state.live  # nobody writes it: the dead writer's lock is gone

    anyio.run(drive)
    assert files_of(killed) == before
