"""Checkpoints and forks: a recorded world branched at a moment goes on exactly as it did.

Worlds here are seeded and on virtual time, so a run is deterministic: the same world run
twice gives the same report byte for byte. A fork taken at a moment of a recording and run
to the recording's end must give that same report (the exact-fork property); a changed
setting must change it; the world a fork starts from is the world the recording had then,
down to every agent's random stream and the scheduler's calendar.
"""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
from pathlib import Path

import anyio
import pytest
from rich.console import Console

from engine.checkpoint import capture
from engine.config import load_scenario
from engine.fork import fork_journal, parse_at, world_at
from engine.headless import run_headless
from engine.journal_read import list_checkpoints
from engine.resume import resume_world
from engine.world import World
from tui.cli import main

END = 300.0  # past the lenders' due times: collections and defaults happen


def config_of(scenario: str, seed: int = 11, agents: int | None = None):
    config = load_scenario(scenario)
    if agents is not None:
        config = config.with_agents(agents)
    return config.model_copy(update={"seed": seed, "clock": config.clock.model_copy(update={"virtual": True})})


def run(world: World, duration: float) -> dict:
    quiet = Console(file=io.StringIO(), width=100)
    code, report = anyio.run(run_headless, world, duration, None, quiet)
    assert code == 0
    return report


def record(path: Path, scenario: str, end: float = END, every: float = 10.0) -> dict:
    world = World(config_of(scenario))
    world.attach_journal(path, checkpoint_every=every)
    return run(world, end)


@pytest.fixture(scope="module")
def recordings(tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    out = {}
    for scenario in ("default", "boltzmann"):
        path = tmp_path_factory.mktemp(scenario) / "parent.db"
        out[scenario] = (path, record(path, scenario))
    return out


def test_a_seeded_virtual_world_gives_the_same_report_twice(tmp_path, recordings):
    """The ground the exact-fork test stands on: the recording itself is reproducible."""
    path, report = recordings["default"]
    assert record(tmp_path / "again.db", "default") == report


@pytest.mark.parametrize("scenario", ["default", "boltzmann"])
@pytest.mark.parametrize("at", [0.0, 10.0, 60.0, 170.0, 290.0])
def test_a_fork_with_nothing_changed_ends_exactly_as_the_recording(tmp_path, recordings, scenario, at):
    parent, original = recordings[scenario]
    before = hashlib.sha256(parent.read_bytes()).hexdigest()
    result = fork_journal(parent, at, tmp_path / "fork.db")
    assert result.exact and result.t == at and result.checkpoint.t == at
    world = resume_world(tmp_path / "fork.db")
    assert world.clock.now() == at
    report = run(world, END - at)
    assert report == original
    assert hashlib.sha256(parent.read_bytes()).hexdigest() == before  # the parent is only read


def test_the_default_world_exercises_every_mechanism_it_is_forked_over(recordings):
    """The exact-fork test above covers the whole economy, not a quiet corner of it."""
    _, report = recordings["default"]
    used = {k for k, n in report["mechanisms"].items() if n}
    assert used >= {"bid", "resolution", "mint", "ubi", "listing_sold", "rate_moved", "loan_offered",
                    "loan_accepted", "loan_repaid", "loan_defaulted", "rescue", "spawn", "config_changed"}
    assert report["totals"]["frozen"] >= 0 and any(a["times_frozen"] for a in report["agents"])


def test_a_fork_between_checkpoints_runs_the_recording_on_to_the_moment(tmp_path, recordings):
    parent, original = recordings["default"]
    result = fork_journal(parent, 43.25, tmp_path / "fork.db")
    assert result.checkpoint.t == 40.0 and result.t == 43.25
    assert run(resume_world(tmp_path / "fork.db"), END - 43.25) == original


def test_the_world_at_a_moment_is_the_world_run_straight_there(recordings):
    """Replay is true: restored from a checkpoint and run on, it equals a fresh run."""
    parent, _ = recordings["default"]
    for t in (0.0, 25.0, 60.0, 97.5):
        replayed, _, exact = world_at(parent, t)
        direct = World(config_of("default"))
        if t > 0:  # at 0, the world as built: nothing has run (a run would start its agents at once)
            anyio.run(lambda: direct.run(final_window=False, until=t))
        assert exact and capture(replayed) == capture(direct), t


def test_a_changed_setting_changes_the_world_from_the_fork_on(tmp_path, recordings):
    parent, original = recordings["default"]
    fork_journal(parent, 30.0, tmp_path / "fork.db", sets=["oracle.slots=4"])
    world = resume_world(tmp_path / "fork.db")
    assert world.config.oracle.slots == 4 and world.oracle.cfg.slots == 4
    report = run(world, END - 30.0)
    assert report != original
    # From the fork on, every resolution has four slots.
    after = [r["slots"] for r in report["oracle"]["recent"] if r["t"] > 30.0]
    assert after and set(after) == {4}


def test_another_seed_changes_the_world_and_is_named(tmp_path, recordings):
    parent, original = recordings["boltzmann"]
    fork_journal(parent, 30.0, tmp_path / "fork.db", seed=99)
    with sqlite3.connect(tmp_path / "fork.db") as db:
        meta = dict(db.execute("SELECT key, value FROM meta"))
    assert meta["parent"] == str(parent.resolve()) and float(meta["forked_at"]) == 30.0
    assert meta["fork_seed"] == "99"
    assert run(resume_world(tmp_path / "fork.db"), END - 30.0) != original


def test_checkpoints_are_taken_at_the_cadence_and_where_the_run_ends(recordings):
    parent, _ = recordings["default"]
    infos = list_checkpoints(parent)
    assert [c.t for c in infos if c.reason == "cadence"] == [10.0 * k for k in range(1, 31)]
    assert (infos[0].t, infos[0].reason) == (0.0, "start")
    assert (infos[-1].t, infos[-1].reason) == (END, "end")


def test_an_operator_action_is_checkpointed(tmp_path):
    world = World(config_of("default"))
    world.attach_journal(tmp_path / "w.db")
    anyio.run(lambda: world.run(5.0))
    assert world.invoke("ledger", "transfer", to="a001", amount=7).ok
    world.journal.commit()
    world.journal.close()
    infos = list_checkpoints(tmp_path / "w.db")
    assert [c.reason for c in infos] == ["start", "end", "operator"]
    assert infos[-1].seq > infos[-2].seq


@pytest.mark.parametrize("text, seconds", [("754.5", 754.5), ("01:23:45", 5025.0), ("T+5m", 300.0),
                                           ("T+1h30m", 5400.0), ("90s", 90.0), ("0", 0.0)])
def test_times_are_read_as_seconds_clock_times_or_spans(text, seconds):
    assert parse_at(text) == seconds


# -- bad input: a clear message, exit code 2, nothing written -----------------------------------------
def _fork_cli(parent: Path, new: Path, *argv: str) -> int:
    return main(["fork", str(parent), "--journal", str(new), *argv])


@pytest.mark.parametrize("argv, message", [
    (["--at", "500"], "outside the recording"),
    (["--at", "soon"], "--at: a world time"),
    (["--at", "-3"], "--at: a world time"),
    (["--at", "30", "--set", "oracle.slotz=4"], "no setting oracle.slotz"),
    (["--at", "30", "--set", "oracle.slots=0"], "oracle.slots"),
    (["--at", "30", "--set", "oracle.slots=four"], "oracle.slots"),
    (["--at", "30", "--set", "nonsense"], "PATH=VALUE"),
    (["--at", "30", "--checkpoint-every", "-1"], "--checkpoint-every"),
])
def test_a_bad_fork_is_refused_and_writes_nothing(tmp_path, recordings, capsys, argv, message):
    parent, _ = recordings["default"]
    before = hashlib.sha256(parent.read_bytes()).hexdigest()
    new = tmp_path / "fork.db"
    assert _fork_cli(parent, new, *argv) == 2
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # no journal, no lock file
    assert hashlib.sha256(parent.read_bytes()).hexdigest() == before


def test_a_fork_into_an_existing_file_is_refused(tmp_path, recordings, capsys):
    parent, _ = recordings["default"]
    new = tmp_path / "taken.db"
    new.write_bytes(b"mine")
    assert _fork_cli(parent, new, "--at", "30") == 2
    assert "exists" in capsys.readouterr().err and new.read_bytes() == b"mine"


def test_a_journal_from_before_checkpoints_cannot_be_forked(tmp_path, recordings, capsys):
    old = tmp_path / "old.db"
    old.write_bytes(recordings["default"][0].read_bytes())
    with sqlite3.connect(old) as db:  # what an older ecology wrote: no checkpoints table
        db.execute("DROP TABLE checkpoints")
    new = tmp_path / "fork.db"
    assert _fork_cli(old, new, "--at", "30") == 2
    assert "older version of ecology, without checkpoints" in capsys.readouterr().err
    assert not new.exists()


def test_the_command_line_forks_and_the_fork_resumes_headless(tmp_path, recordings, capsys):
    parent, original = recordings["boltzmann"]
    new = tmp_path / "fork.db"
    assert _fork_cli(parent, new, "--at", "T+1m") == 0
    assert "forked" in capsys.readouterr().out
    report = tmp_path / "report.json"
    assert main(["run", "--headless", "--resume", str(new), "--duration", str(END - 60.0),
                 "--report", str(report)]) == 0
    assert json.loads(report.read_text()) == json.loads(json.dumps(original))


def test_the_journals_fast_encoding_means_the_same_checkpoint(recordings):
    """Checkpoints written with reused artifact JSON decode to the world's own capture."""
    from engine.checkpoint import Cursors, capture_encoded, decode

    world, _, _ = world_at(recordings["default"][0], 150.0)
    cursors = Cursors()
    first = decode(capture_encoded(world, cursors))
    anyio.run(lambda: world.run(final_window=False, until=200.0))
    again = decode(capture_encoded(world, cursors))  # most artifacts from the cache now
    assert first != again and again == json.loads(json.dumps(capture(world)))


def test_reused_fragments_stay_true_through_steering(recordings):
    """The writer reuses an agent's JSON while its `dump_key` is unchanged: through a run
    with the operator pausing, stopping and reconfiguring agents and the world,
    every checkpoint it encodes is still the world's own capture."""
    from engine.checkpoint import Cursors, capture_encoded, decode

    world, _, _ = world_at(recordings["default"][0], 60.0)
    cursors = Cursors()
    ids = sorted(world.agents)
    steering = [step for k in (1, 5) for step in (
        ("pause_agent", ids[k]), ("stop_agent", ids[k + 1]), ("pause", None), ("resume", None),
        ("resume_agent", ids[k]), ("configure", ids[k + 2]), (None, None))]
    reused = 0
    for step, (method, agent) in enumerate(steering):
        if method == "configure":
            assert world.invoke("rights", "configure", {"agent": agent, "brain": "dreamer"}, principal=agent).ok
        elif method is not None:
            assert world.invoke("world", method, {} if agent is None else {"agent": agent}).ok, method
        if not world.paused:  # (a paused world on virtual time would wait for ever)
            anyio.run(lambda: world.run(final_window=False, until=60.0 + 3.0 * (step + 1)))
        before = dict(cursors.agents.json)
        encoded = decode(capture_encoded(world, cursors))
        reused += sum(1 for aid, fragment in cursors.agents.json.items() if before.get(aid) is fragment)
        assert encoded == json.loads(json.dumps(capture(world))), (step, method)
    assert reused > 0  # the cache was used, so this tested it


def test_export_at_writes_the_state_of_that_moment(tmp_path, recordings):
    parent, _ = recordings["default"]
    assert main(["export", str(parent), "--at", "T+1m30s", "--out", str(tmp_path / "x")]) == 0
    doc = json.loads((tmp_path / "x.at-90.json").read_text())
    assert doc["t"] == 90.0 and doc["exact"] and doc["checkpoint"]["t"] == 90.0
    world, _, _ = world_at(parent, 90.0)
    assert doc["state"] == json.loads(json.dumps(capture(world)))
    assert doc["report"]["totals"]["scrip_supply"] == world.ledger.scrip_supply


@pytest.mark.parametrize("at, message", [("9999", "outside the recording"), ("later", "--at")])
def test_export_at_a_bad_time_is_refused(tmp_path, recordings, capsys, at, message):
    parent, _ = recordings["default"]
    assert main(["export", str(parent), "--at", at, "--out", str(tmp_path / "x")]) == 2
    assert message in capsys.readouterr().err and not any(tmp_path.iterdir())


@pytest.mark.parametrize("argv, message", [
    (["--at", "9999"], "outside the recording"),
    (["--at", "soon"], "--at"),
])
def test_replay_refuses_a_bad_moment(recordings, capsys, argv, message):
    parent, _ = recordings["default"]
    assert main(["replay", str(parent), *argv]) == 2
    assert message in capsys.readouterr().err


def test_replay_refuses_a_journal_from_before_checkpoints(tmp_path, recordings, capsys):
    old = tmp_path / "old.db"
    old.write_bytes(recordings["default"][0].read_bytes())
    with sqlite3.connect(old) as db:
        db.execute("DROP TABLE checkpoints")
    before = old.read_bytes()
    assert main(["replay", str(old)]) == 2
    assert "without checkpoints" in capsys.readouterr().err and old.read_bytes() == before


def test_a_journal_still_being_written_is_replayed_up_to_its_last_commit(tmp_path, recordings):
    """Its writer still holds the lock and the last commits are only in the -wal: a
    reader sees the world up to the last commit in the file."""
    from engine.replay import Recording

    world = World(config_of("default"))
    world.attach_journal(tmp_path / "live.db")

    async def some() -> None:
        await world.run(35.0)

    anyio.run(some)
    # Not closed: the writer's connection and lock are still held, as in a live process.
    rec = Recording(tmp_path / "live.db")
    assert rec.is_live() and rec.end == 35.0
    assert [c.t for c in rec.checkpoints][-1] == 35.0
    moment = anyio.run(rec.moment, 32.5)
    assert moment.exact and moment.t == 32.5
    world.journal.close()


def test_a_forks_new_seed_is_carried_by_its_checkpoints(tmp_path, recordings):
    """After a fork with another seed, streams are still written as seed and position."""
    parent, _ = recordings["boltzmann"]
    fork_journal(parent, 30.0, tmp_path / "fork.db", seed=99)
    world = resume_world(tmp_path / "fork.db")
    run(world, 30.0)
    from engine.journal_read import read_checkpoint

    last = list_checkpoints(tmp_path / "fork.db")[-1]
    streams = [a["stream"] for _, a in read_checkpoint(tmp_path / "fork.db", last.n)["agents"]]
    assert all("state" not in s and s["seed"].startswith("99:") for s in streams)
