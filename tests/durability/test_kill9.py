"""A journalled world survives SIGKILL: a real subprocess runs the default world with a
SQLite journal, the operator acts (each action confirmed only once committed), the process
is killed without warning, and the world is resumed from the journal: every invariant holds,
every confirmed operator action is there, and what was lost is at most the activity since
the last commit."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest

from engine.journal import JournalError, read_state
from engine.resume import resume_world

ROOT = Path(__file__).resolve().parents[2]

# The child: the default world on a real clock at 20x, journalled every 50 ms. Every few
# hundred milliseconds the operator writes a numbered artifact and spawns an agent, waits
# for the commit, and only then says CONFIRMED (as the UI does before it confirms).
CHILD = r"""
import sys, anyio
from engine.actions import Write
from engine.config import load_scenario
from engine.world import World

PACE = 0.2  # the child's own rhythm of operator actions (the test waits on its output)

async def main(path):
    cfg = load_scenario("default")
    cfg = cfg.model_copy(update={"clock": cfg.clock.model_copy(update={"speed": 20.0})})
    world = World(cfg)
    world.attach_journal(path, commit_interval=0.05)
    async with anyio.create_task_group() as tg:
        tg.start_soon(world.run)
        for n in range(1000):
            await anyio.sleep(PACE)
            r = world.waist.perform("operator", Write(f"operator note {n}", artifact_id=f"note-{n}"), world.clock.now())
            assert r.ok, r.error
            r = world.invoke("ledger", "spawn", brain="boltzmann", rate=0.01, scrip=1, agent_id=f"op{n}")
            assert r.ok, r.error
            assert await world.journal.flush()
            print(f"CONFIRMED {n} {world.clock.now():.3f}", flush=True)

anyio.run(main, sys.argv[1])
"""


def test_sigkill_mid_run_then_resume_is_consistent(tmp_path):
    journal = tmp_path / "world.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(journal)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    confirmed = []
    try:
        for line in child.stdout:  # the child's own pace decides when we kill it, not a sleep
            if line.startswith("CONFIRMED"):
                confirmed.append(int(line.split()[1]))
                if len(confirmed) == 6:
                    break
        killed_at = time.time()
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL, child.stderr.read()[-2000:]
    assert confirmed == list(range(6))

    # Nothing more than the last commit interval of activity was lost: the last commit was
    # at most a few intervals (50 ms each) before the kill, allowing for a busy machine.
    db = sqlite3.connect(journal)
    last_commit_wall, = db.execute("SELECT max(wall) FROM commits").fetchone()
    db.close()
    assert killed_at - last_commit_wall < 1.0, killed_at - last_commit_wall

    meta, tables = read_state(journal)
    world = resume_world(journal, virtual=True)
    assert all(world.invariants().values()), world.invariants()
    for n in confirmed:  # every confirmed operator action survived
        assert world.artifacts.get(f"note-{n}").content == f"operator note {n}"
        assert f"op{n}" in world.agents and world.ledger.rate_micro[f"op{n}"] == 10_000
    saved_now = json.loads(tables["world"]["clock"])["now"]
    assert world.clock.now() == saved_now > 0

    # And the resumed world runs on: more actions, invariants intact, journal still written.
    before = world.total_actions

    async def go():
        await world.run(120.0)

    anyio.run(go)
    assert world.total_actions > before
    assert all(world.invariants().values()), world.invariants()
    assert world.journal.commits >= 1
    world.journal.close()


def test_resume_refuses_what_is_not_a_journal(tmp_path):
    bad = tmp_path / "x.db"
    bad.write_text("not sqlite at all, just text" * 100)
    with pytest.raises(JournalError, match="not a journal|not a readable journal|not an Agent Ecology journal"):
        resume_world(bad)
    with pytest.raises(JournalError, match="no such journal"):
        resume_world(tmp_path / "missing.db")
