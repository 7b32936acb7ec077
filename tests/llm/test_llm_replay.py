"""Recorded answers: a world with LLM agents, recorded in a journal, re-run with
`--llm-replay` under virtual time gives the identical report while the server is asked
nothing; a request the recording lacks is a failed turn, counted."""

from __future__ import annotations

import hashlib
import json
import sqlite3

import pytest
from fake_llm import FakeLLM, llm_params, reply

from engine.brains.llm_prompt import observation_in
from engine.llm_record import Recording, RecordingError
from tui.cli import main


def answer_by_content(body: dict) -> dict:
    """A model whose answers depend on what it is asked (not on the order requests
    arrive in): bid on an artifact it has not bid on, else write, transfer, sleep, or
    now and then answer nonsense."""
    user = body["messages"][-1]["content"]
    obs = observation_in(user)
    roll = int(hashlib.sha256(user.encode()).hexdigest()[:8], 16)
    owned = [item.split(": ")[0] for item in obs["your artifacts"].split("; ") if item != "none"]
    bids = [] if obs["your open bids"] == "none" else [b.split(" ")[0] for b in obs["your open bids"].split(", ")]
    unbid = [a for a in owned if a not in bids]
    prompt, completion = 300 + roll % 200, 20 + roll % 30
    if roll % 11 == 0:
        return reply("I think I will wait and see.", prompt=prompt, completion=completion)
    if unbid and int(obs["scrip"]) > 2:
        answer = {"action": "invoke", "target": "oracle", "method": "bid", "args": {"artifact": unbid[0], "amount": 1}}
    elif roll % 3 == 0:
        answer = {"action": "write", "content": f"idea {roll % 9973}: a thought about scarcity", "kind": "data"}
    elif roll % 3 == 1:
        answer = {"action": "invoke", "target": "ledger", "method": "transfer", "args": {"to": "w001", "amount": 1}}
    else:
        answer = {"action": "sleep", "seconds": 5 + roll % 20}
    return reply(answer, prompt=prompt, completion=completion)


def run_cli(tmp_path, world: str, report: str, *extra: str) -> dict:
    code = main(["run", "--headless", "--world", world, "--virtual-time", "--duration", "150",
                 "--report", str(tmp_path / report), *extra])
    assert code == 0
    return json.loads((tmp_path / report).read_text())


def toml_world(tmp_path, server: FakeLLM) -> str:
    params = llm_params(server, dollars_per_1k_tokens=0.002, compute_per_token=0.002, max_sleep=30.0)
    inline = ", ".join(f"{k} = {json.dumps(v)}" for k, v in params.items())
    text = f"""
name = "llm-replay"
seed = 5
llm_budget = 1.0
[oracle]
resolution_interval = 30.0
[[agents]]
brain = "llm"
prefix = "m"
count = 3
scrip = 30
rate = 2.0
capacity = 40.0
params = {{ {inline} }}
[[agents]]
brain = "builder"
prefix = "w"
count = 3
scrip = 20
rate = 1.5
[[agents]]
brain = "boltzmann"
prefix = "a"
count = 4
scrip = 10
rate = 1.0
"""
    path = tmp_path / "w.toml"
    path.write_text(text)
    return str(path)


def test_a_recorded_llm_world_replays_to_the_identical_report_without_asking_the_model(tmp_path):
    recorder = FakeLLM().start()
    recorder.responder = answer_by_content
    try:
        world = toml_world(tmp_path, recorder)
        recorded = run_cli(tmp_path, world, "recorded.json", "--journal", str(tmp_path / "rec.db"))
    finally:
        recorder.close()
    asked = len(recorder.requests)
    llm = recorded["llm"]
    # The recorded run really thought: many turns, some answers invalid, tokens and dollars.
    assert asked >= 30 and llm["turns"] == asked
    assert 0 < llm["failed_turns"] < llm["turns"] and llm["valid_answers"] == llm["turns"] - llm["failed_turns"]
    assert llm["prompt_tokens"] > 0 and llm["dollars"] > 0 and llm["replay_missing"] == 0
    db = sqlite3.connect(tmp_path / "rec.db")
    assert db.execute("SELECT count(*) FROM llm_calls").fetchone()[0] == asked
    db.close()

    # The same world, its answers from the recording: another server, never asked.
    replayer = FakeLLM().start()
    replayer.responder = answer_by_content
    try:
        # The world file names the recording server's address: point it at the idle one.
        world_text = (tmp_path / "w.toml").read_text().replace(recorder.url, replayer.url)
        (tmp_path / "w.toml").write_text(world_text)
        replayed = run_cli(tmp_path, world, "replayed.json", "--llm-replay", str(tmp_path / "rec.db"))
    finally:
        replayer.close()
    assert replayer.requests == []
    assert replayed == recorded


def test_a_request_the_recording_lacks_is_a_failed_turn_counted_in_the_report(tmp_path):
    recorder = FakeLLM().start()
    recorder.responder = answer_by_content
    try:
        world = toml_world(tmp_path, recorder)
        recorded = run_cli(tmp_path, world, "recorded.json", "--journal", str(tmp_path / "rec.db"))
    finally:
        recorder.close()
    # Lose the last ten recorded answers.
    db = sqlite3.connect(tmp_path / "rec.db")
    db.execute("DELETE FROM llm_calls WHERE n IN (SELECT n FROM llm_calls ORDER BY t DESC, n DESC LIMIT 10)")
    db.commit()
    db.close()
    replayed = run_cli(tmp_path, world, "replayed.json", "--llm-replay", str(tmp_path / "rec.db"))
    llm = replayed["llm"]
    assert llm["replay_missing"] >= 1
    assert llm["failed_turns"] >= llm["replay_missing"]
    assert replayed["totals"]["events"]["brain_failed"] >= llm["replay_missing"]
    assert recorded["llm"]["replay_missing"] == 0


@pytest.mark.parametrize("rows, fragment", [
    ([("short", "m001", 0.0, "m", "{}", "x", None, 1, 1, 0, None)], "bad request key"),
    ([("k" * 64, "m001", 0.0, "m", "{}", "x", None, -5, 1, 0, None)], "prompt_tokens"),
    ([("k" * 64, "m001", 0.0, "m", "{}", None, None, 1, 1, 0, None)], "neither"),
    ([("k" * 64, "m001", 0.0, "m", "{}", b"\x00\x01", None, 1, 1, 0, None)], "the answer must be text"),
])
def test_a_hostile_recording_is_refused_with_the_reason(tmp_path, rows, fragment):
    from engine.llm_record import COLUMNS, LLM_CALLS_TABLE

    path = tmp_path / "bad.db"
    db = sqlite3.connect(path)
    db.execute(LLM_CALLS_TABLE)
    db.executemany(f"INSERT INTO llm_calls ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})", rows)
    db.commit()
    db.close()
    before = path.read_bytes()
    with pytest.raises(RecordingError, match=fragment):
        Recording.load(path)
    assert path.read_bytes() == before  # read-only: the file is untouched


def test_replay_from_a_file_that_is_not_a_recording_is_a_clear_error(tmp_path, capsys):
    not_db = tmp_path / "notes.txt"
    not_db.write_text("hello")
    assert main(["run", "--headless", "--scenario", "default", "--duration", "1", "--llm-replay", str(not_db)]) == 2
    assert "not a readable journal" in capsys.readouterr().err
    assert main(["run", "--headless", "--scenario", "default", "--duration", "1",
                 "--llm-replay", str(tmp_path / "none.db")]) == 2
    assert "no such file" in capsys.readouterr().err
