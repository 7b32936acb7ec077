"""One declaration per number (issue 12): each genesis method declares its numeric
parameters' kinds, bounds and units with `@method`; that declaration is what the waist
checks, what a language model reads in its vocabulary and what the UI's help shows. The
sleep action's seconds and timeout, world files and the command line keep the same bounds.
"""

from __future__ import annotations

import math

import pytest
from ecotest import all_true, make_world, run_world, steps
from hostile import EXTREMES, hostile_world

import ecotest
from engine import bounds
from engine.actions import Sleep
from engine.brains.llm_prompt import action_schema, vocabulary
from engine.config import ConfigError, load_world

# Every numeric parameter of every genesis method, and its bound's text in the default
# test world (max_rate_per_day 10, min_bid 2).
NUMERIC = {
    ("ledger", "transfer", "amount"): "whole scrip in [1, 2^53-1]",
    ("ledger", "transfer_compute", "amount"): "a number in (0, 10^12] compute units",
    ("ledger", "transfer_rate", "amount"): "a number in (0, 10^9] compute units/s",
    ("ledger", "spawn", "rate"): "a number in (0, 10^9] compute units/s",
    ("ledger", "spawn", "scrip"): "whole scrip in [0, 2^53-1]",
    ("ledger", "spawn", "capacity"): "a number in [0, 10^12] compute units",
    ("ledger", "set_rate", "rate"): "a number in [0, 10^9] compute units/s",
    ("ledger", "set_capacity", "capacity"): "a number in [0, 10^12] compute units",
    ("rights", "configure", "think_delay"): "a number in [0, 86400] seconds",
    ("rights", "slice_rate", "amount"): "a number in (0, 10^9] compute units/s",
    ("rights", "split", "amount"): "a number in (0, 10^9] compute units/s",
    ("rights", "set_price", "price"): "whole scrip in [0, 2^53-1]",
    ("world", "set_speed", "speed"): "a number in (0, 10^6] world seconds per real second",
    ("oracle", "bid", "amount"): "whole scrip in [2, 2^53-1]",
    ("market", "list", "price"): "whole scrip in [0, 2^53-1]",
    ("contracts", "offer", "principal"): "whole scrip in [1, 2^53-1]",
    ("contracts", "offer", "rate_per_day"): "a decimal in [0, 10] per day",
    ("contracts", "offer", "due_in"): "a decimal in (0, 10^9] seconds",
    ("contracts", "repay", "amount"): "whole scrip in [1, 2^53-1]",
}


def test_every_numeric_parameter_is_declared_with_its_bound():
    world = hostile_world()
    declared = {(s.id, m.name, name): bound.describe(world.config)
                for s in world.waist.genesis.values() for m in s.methods.values() for name, bound in m.bounds}
    assert declared == NUMERIC


def test_the_declaration_is_what_agents_and_the_ui_read():
    world = hostile_world()
    services = [(svc.describe(), {n: m.required for n, m in svc.methods.items()}) for svc in world.waist.genesis.values()]
    # A language model's answer schema types each number by its declared kind...
    schema = action_schema(services)
    invokes = {(b["properties"]["target"]["const"], b["properties"]["method"]["const"]): b["properties"]["args"]
               for b in schema["anyOf"] if b["properties"]["action"] == {"const": "invoke"}}
    offer = invokes[("contracts", "offer")]["properties"]
    assert offer["principal"] == {"type": "integer", "minimum": 0}
    assert offer["rate_per_day"] == offer["due_in"] == {"type": "number"}
    assert invokes[("oracle", "bid")]["properties"]["amount"]["type"] == "integer"
    assert invokes[("market", "list")]["properties"]["price"]["type"] == "integer"
    assert invokes[("rights", "slice_rate")]["properties"]["amount"] == {"type": "number"}
    # ...and reads each method's parameters, by name, in its vocabulary.
    assert "contracts.offer(debtor, principal, rate_per_day, due_in)" in vocabulary({}, services)
    # The genesis artifact's content, which the UI shows and agents read, has them as data.
    offer = world.artifacts.get("contracts").content["methods"]["offer"]
    assert offer["bounds"]["rate_per_day"] == {"kind": "exact", "low": 0.0, "high": 10.0, "low_open": False,
                                              "high_open": False, "unit": "per day",
                                              "text": "a decimal in [0, 10] per day"}
    assert offer["bounds"]["principal"]["high"] == 2**53 - 1 and offer["optional"] == []
    assert world.waist.help_for("world", "set_speed", "speed") == \
        "the new speed: a number in (0, 10^6] world seconds per real second"
    assert world.waist.help_for("contracts", "offer", "nope") is None
    speed = world.artifacts.get("world").content["methods"]["set_speed"]["bounds"]["speed"]
    assert (speed["low"], speed["high"], speed["low_open"], speed["high_open"]) == (0.0, 1e6, True, False)


@pytest.mark.parametrize("value", EXTREMES)
def test_a_sleep_with_a_bad_duration_is_refused_at_the_waist(value):
    world = make_world()
    perform, now = world.waist.perform, world.clock.now()
    for action, arg in ((Sleep(seconds=value), "seconds"), (Sleep(until_event="loan", timeout=value), "timeout")):
        r = perform("a001", action, now)
        good = value is None  # no duration: a sleep until woken (or until the event)
        if type(value) in (int, float):
            good = 0 <= value <= 10**9  # (NaN compares false)
        assert r.ok == good, (action.describe(), r)
        if not good and value is not None:
            assert r.arg == arg and f"{arg} must be a number in [0, 10^9] seconds" in r.error, r


def test_a_sleep_until_unknown_events_is_refused_at_the_waist():
    world = make_world()
    for kinds in (("no_such_event",), (5,), ("loan", None)):
        r = world.waist.perform("a001", Sleep(until_event=kinds, timeout=1.0), 0.0)
        assert not r.ok and r.arg == "until_event" and "until_event must be event kinds" in r.error, r
    r = world.waist.perform("a001", Sleep(seconds=1.0, only_mine="yes"), 0.0)
    assert not r.ok and r.arg == "only_mine"


@pytest.mark.anyio
async def test_an_agent_sleeping_on_hostile_numbers_is_refused_and_keeps_running():
    """Before, these raised inside the agent loop: five brain failures and it crashed."""
    world = make_world()
    bad = [Sleep(seconds=1e308), Sleep(seconds=math.nan), Sleep(seconds=10**400), Sleep(seconds="5"),
           Sleep(until_event="nope", timeout=1.0), Sleep(until_event="loan", timeout=math.inf), Sleep(seconds=-1)]
    ecotest.SCRIPTS["a001"] = steps(*bad, Sleep(seconds=30.0))
    await run_world(world, 60.0)
    agent = world.agents["a001"]
    assert agent.refused == len(bad) and agent.total_failures == 0 and not agent.crashed
    assert ecotest.times("a001")[-1] == 30.0  # the good sleep was slept, whole
    assert all_true(world.invariants())


@pytest.mark.parametrize("toml, field, fragment", [
    ("[operator]\nscrip = 9007199254740992\n", "operator.scrip", "less than or equal to 9007199254740991"),
    ('[[agents]]\nbrain = "boltzmann"\nrate = 1e10\n', "agents.0.rate", "less than or equal to 1000000000"),
    ('[[agents]]\nbrain = "boltzmann"\ncapacity = 1e13\n', "agents.0.capacity", "less than or equal to"),
    ('[[agents]]\nbrain = "boltzmann"\nthink_delay = 1e6\n', "agents.0.think_delay", "less than or equal to 86400"),
    ("[clock]\nspeed = 0\n", "clock.speed", "greater than 0"),
    ("[clock]\nspeed = 1.000001e6\n", "clock.speed", "less than or equal to 1000000"),
    ("[costs]\nnoop = 1e13\n", "costs.noop", "less than or equal to"),
    ('[costs]\n"ledger.transfer" = 1e13\n', "costs", "must be a number in [0, 10^12] compute units"),
    ("[oracle]\nmint_ratio = 0\n", "oracle.mint_ratio", "greater than 0"),
    ("[oracle]\nmint_ratio = inf\n", "oracle.mint_ratio", "finite number"),
    ("[oracle]\nmin_bid = 9007199254740992\n", "oracle.min_bid", "less than or equal to"),
    ("[contracts]\nmax_rate_per_day = 1e7\n", "contracts.max_rate_per_day", "less than or equal to 1000000"),
    ("[compute]\ntotal_rate = nan\n", "compute.total_rate", "finite number"),
])
def test_world_files_keep_the_same_bounds(toml, field, fragment, tmp_path):
    path = tmp_path / "w.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as e:
        load_world(path)
    assert field in str(e.value) and fragment in str(e.value), str(e.value)


def test_the_command_line_keeps_the_same_bounds(capsys):
    """The CLI checks its numbers as world files do (engine.config.RunOptions)."""
    from tui.cli import main

    for argv, fragment in ((["run", "--headless", "--speed", "1.5e6"], "--speed: Input should be less than or equal to 1000000"),
                           (["run", "--headless", "--speed", "0"], "--speed: Input should be greater than 0"),
                           (["run", "--headless", "--duration", "1e308"], "--duration: Input should be less than or equal to 1000000000")):
        assert main(argv) == 2
        assert fragment in capsys.readouterr().err


def test_bounds_compare_exactly_and_never_convert_a_huge_int_to_a_float():
    assert bounds.SCRIP.check(2**53 - 1, "x") == 2**53 - 1
    for value in (2**53, 10**400, -(10**400)):
        with pytest.raises(Exception) as e:
            bounds.RATE.check(value, "rate")
        assert e.type.__name__ == "Refusal"  # not an OverflowError from float(10**400)
    assert bounds.CAPACITY.check(-0.0, "c") == 0.0 and math.copysign(1, bounds.CAPACITY.check(-0.0, "c")) == 1
    assert bounds.written(0.57) == bounds.Fraction(57, 100) and bounds.written(3) == 3
