"""Reading the model's answer, the brain's params, and the optional openai dependency.
No server needed."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from engine.actions import Delete, Invoke, Noop, Read, Sleep, Write
from engine.brains import brain_class
from engine.brains.llm import LLMBrain, retry_after_seconds
from engine.brains.llm_prompt import InvalidAnswer, parse_answer
from engine.config import ConfigError, load_scenario, parse_world

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "text, kind, check",
    [
        ('{"action": "noop"}', Noop, lambda a: True),
        ('{"action": "read", "artifact_id": "x-1"}', Read, lambda a: a.artifact_id == "x-1"),
        ('{"action": "write", "content": "hello"}', Write, lambda a: (a.content, a.kind, a.artifact_id) == ("hello", "data", None)),
        ('{"action": "write", "content": {"k": [1, 2]}, "kind": "code", "artifact_id": "mine"}', Write,
         lambda a: a.content == {"k": [1, 2]} and a.kind == "code" and a.artifact_id == "mine"),
        ('{"action": "delete", "artifact_id": "x-1"}', Delete, lambda a: a.artifact_id == "x-1"),
        ('{"action": "invoke", "target": "ledger", "method": "transfer", "args": {"to": "b", "amount": 2}}', Invoke,
         lambda a: (a.target, a.method, a.args) == ("ledger", "transfer", {"to": "b", "amount": 2})),
        ('{"action": "invoke", "target": "oracle", "method": "open_bids"}', Invoke, lambda a: a.args == {}),
        ('{"action": "sleep", "seconds": 12.5}', Sleep, lambda a: a.seconds == 12.5 and a.until_event is None),
        ('{"action": "sleep", "seconds": 99999}', Sleep, lambda a: a.seconds == 600.0),  # capped at max_sleep
        ('{"action": "sleep", "until_event": "scrip_transferred", "only_mine": true}', Sleep,
         lambda a: a.until_event == ("scrip_transferred",) and a.only_mine and a.timeout == 600.0),
        ('{"action": "sleep", "until_event": ["listing_created", "oracle_resolved"], "timeout": 30}', Sleep,
         lambda a: a.until_event == ("listing_created", "oracle_resolved") and a.timeout == 30.0),
        # What models wrap answers in: fences, prose, <think> blocks; a reason is welcome.
        ('```json\n{"action": "noop", "reason": "nothing to do"}\n```', Noop, lambda a: True),
        ('I will read it.\n{"action": "read", "artifact_id": "a"} Done.', Read, lambda a: a.artifact_id == "a"),
        ('<think>hmm {"action": "delete"}</think>{"action": "read", "artifact_id": "b"}', Read,
         lambda a: a.artifact_id == "b"),
    ],
)
def test_valid_answers_become_engine_actions(text, kind, check):
    action, answer = parse_answer(text)
    assert type(action) is kind and check(action)
    assert answer["action"] == kind.name and "reason" not in answer


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("", "empty"),
        (None, "empty"),
        ("transfer 3 to b001", "not valid JSON"),
        ("[1, 2]", "one JSON object"),
        ('{"target": "ledger"}', 'no "action" field'),
        ('{"action": "fly"}', "'fly'"),
        ('{"action": "read"}', "read.artifact_id: Field required"),
        ('{"action": "invoke", "target": "ledger", "method": "transfer", "args": [1]}', "invoke.args"),
        ('{"action": "invoke", "target": "ledger", "method": "transfer", "amount": 3}', "invoke.amount: Extra inputs"),
        ('{"action": "write"}', "write.content"),
        ('{"action": "sleep"}', "give seconds, or until_event"),
        ('{"action": "sleep", "seconds": -1}', "sleep.seconds"),
        ('{"action": "sleep", "until_event": "payday"}', "unknown event kinds ['payday']"),
    ],
)
def test_invalid_answers_say_what_is_wrong(text, fragment):
    with pytest.raises(InvalidAnswer) as e:
        parse_answer(text)
    assert fragment in str(e.value)


def test_params_are_strict_and_named():
    cls = brain_class("llm")
    assert cls is LLMBrain and cls.is_async
    p = cls.validate_params({})
    assert p.api_key_env is None and p.max_retries == 2 and p.think_cost == 1.0
    for bad in ({"temperature": "hot"}, {"max_tokens": 1.5}, {"max_tokens": True}, {"timeout": 0},
                {"base_url": "localhost:11434"}, {"api_key_env": "not a name"}, {"modle": "x"},
                {"compute_per_token": -1.0}, {"dollars_per_1k_tokens": float("nan")}):
        with pytest.raises(ValueError):
            cls.validate_params(bad)
    with pytest.raises(ConfigError) as e:
        parse_world({"agents": [{"brain": "llm", "params": {"max_retries": -1}}]})
    assert "agents.0: params.max_retries" in str(e.value)


def test_retry_after_forms():
    assert retry_after_seconds({"retry-after": "0.2"}) == 0.2
    assert retry_after_seconds({"retry-after-ms": "150"}) == 0.15
    assert retry_after_seconds({}) is None
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({"retry-after": "-3"}) is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 < retry_after_seconds({"retry-after": later}) <= 30


def test_the_llm_scenario_is_a_valid_world():
    config = load_scenario("llm")
    brains = {g.brain for g in config.agents}
    assert "llm" in brains and brains - {"llm"}  # LLM agents among scripted ones
    assert config.llm_budget > 0


def test_without_openai_a_world_using_the_llm_brain_is_refused_clearly(monkeypatch):
    monkeypatch.setitem(sys.modules, "openai", None)  # as if it were not installed
    with pytest.raises(ValueError, match=r"pip install -e '\.\[llm\]'"):
        LLMBrain.validate_params({})
    with pytest.raises(ConfigError) as e:
        parse_world({"agents": [{"brain": "llm"}]}, source="w.toml")
    assert "w.toml: agents.0" in str(e.value) and "openai" in str(e.value)
    # Other brains do not care.
    parse_world({"agents": [{"brain": "boltzmann"}]})


def test_the_engine_runs_without_openai():
    """The engine never imports openai until an LLM brain thinks; with it missing, scripted
    worlds run as ever."""
    code = (
        "import sys; sys.modules['openai'] = None\n"
        "import anyio\n"
        "from engine.brains import brain_class\n"
        "from engine.config import load_scenario\n"
        "from engine.world import World\n"
        "from engine.clock import VirtualClock\n"
        "brain_class('llm')\n"
        "w = World(load_scenario('default'), clock=VirtualClock())\n"
        "anyio.run(w.run, 30.0)\n"
        "print(w.total_actions > 0, 'openai' in sys.modules and sys.modules['openai'] is not None)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["True", "False"]


def test_the_observation_is_compact_lines_that_keep_every_fact():
    """The user message renders the observation as `label: value` lines (JSON's quotes and
    repeated keys cost a small model's tokenizer twice the tokens), with nothing dropped."""
    from engine.brains.llm_prompt import changes, observation_in, render_turn, user_message

    before = {"you": "m001", "scrip": 45, "compute": 18.29, "your_open_bids": {},
              "open_listings": [{"id": "listing-2", "seller": "t001", "artifact": "rate-6", "kind": "rate", "price": 8}],
              "open_listings_not_shown": 3, "your_contracts": [], "other_agents": {"x001": 66, "w001": 40}}
    now = {**before, "scrip": 43, "your_open_bids": {"note-1": 2}}
    history = [{"t": 4.25, "you_did": {"action": "invoke", "target": "oracle", "method": "bid",
                                       "args": {"artifact": "note-1", "amount": 2}}, "result": {"ok": True, "value": None}},
               {"t": 5.0, "you_did": {"action": "write", "content": "z" * 200, "kind": "data"},
                "result": {"ok": False, "error": "compute would pass max debt", "code": "max_debt"}}]
    text = user_message("You are a builder.", now, changes(before, now), history, None)
    lines = observation_in(text)
    assert lines == {
        "you": "m001", "scrip": "43", "compute": "18.29", "your open bids": "note-1 2",
        "open listings": "listing-2: seller t001, artifact rate-6, kind rate, price 8 (+3 more)",
        "your contracts": "none", "other agents' scrip": "x001 66, w001 40"}
    assert "## Changed since your last turn\nscrip -2; your open bids new note-1 2\n" in text
    assert render_turn(history[0]) == 't 4.25: invoke oracle.bid {"artifact":"note-1","amount":2} -> ok'
    # A long write is cut in the history; a refusal keeps its code and reason.
    assert render_turn(history[1]) == f't 5: write content "{"z" * 60}...", kind data -> refused (max_debt): ' \
        'compute would pass max debt'
    assert text.endswith("Answer with one JSON action.")


def test_a_raw_newline_inside_a_string_is_read_and_the_value_still_checked():
    action, _ = parse_answer('{"action": "write", "content": "two\nlines", "kind": "data"}')
    assert isinstance(action, Write) and action.content == "two\nlines" and action.kind == "data"
    with pytest.raises(InvalidAnswer, match="artifact_id"):
        parse_answer('{"action": "read", "artifact_id": ""}')
