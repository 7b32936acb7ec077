"""A recorded world confirms an operator's action only once it is committed: when the
notice appears, the journal on disk already holds the change."""

from __future__ import annotations

import json

import pytest
from tuikit import SIZE, fresh_world, make_app, notices

from engine.actions import Write
from engine.journal import read_state

pytestmark = pytest.mark.anyio


@pytest.fixture
def world():
    return fresh_world()  # outside the test's event loop: building it runs a loop of its own


async def test_operator_action_is_on_disk_before_it_is_confirmed(tmp_path, world):
    world.attach_journal(tmp_path / "w.db", commit_interval=60.0)  # no background commits
    assert await world.journal.flush()
    app = make_app(world)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("space")  # pause the world
        for _ in range(50):
            await pilot.pause()
            if notices(app):
                break
        assert world.paused
        assert notices(app), "the action was confirmed"
        meta, tables = read_state(tmp_path / "w.db")
        assert json.loads(tables["world"]["clock"])["paused"] is True  # already committed
    world.journal.close()


async def test_a_failing_journal_says_the_action_is_not_yet_recorded(tmp_path, world):
    journal = world.attach_journal(tmp_path / "w.db", commit_interval=60.0)
    assert await journal.flush()
    pages = journal.db.execute("PRAGMA page_count").fetchone()[0]
    journal.db.execute(f"PRAGMA max_page_count = {pages}")
    app = make_app(world)
    async with app.run_test(size=SIZE) as pilot:
        # Something sizeable to write, so the next commit needs pages the file may not take.
        big = Write("x" * 200_000, artifact_id="big-note")
        assert world.waist.perform("operator", big, world.clock.now()).ok
        await pilot.press("space")
        for _ in range(50):
            await pilot.pause()
            if notices(app, "warning"):
                break
        assert any("not yet recorded" in n for n in notices(app, "warning"))
    journal.close()
