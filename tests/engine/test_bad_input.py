"""Bad input (issue 2, item 5): malformed world files are a `ConfigError` naming the field;
bad actions and invocations are refused results with a clear reason that change nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecotest import SCRIPTS, TURNS, make_world, run_world, state, steps
from engine.actions import Delete, Invoke, Read, Write
from engine.config import ConfigError, load_scenario, load_world, parse_world, scenario_names

# -- world files ------------------------------------------------------------------------------

BAD_WORLDS = {
    # case: (file text, fragments the message must contain)
    "bad_toml": ('name = "x"\n[[agents]\nbrain = "boltzmann"\n', ["not valid TOML", "line 2"]),
    "wrong_type": ('seed = "seven"\n', ["seed:", "integer"]),
    "wrong_type_nested": ('[[agents]]\nbrain = "boltzmann"\ncount = "many"\n', ["agents.0.count", "integer"]),
    "negative_count": ('[[agents]]\nbrain = "boltzmann"\ncount = -3\n', ["agents.0.count", "greater than or equal to 0"]),
    "unknown_brain": ('[[agents]]\nbrain = "telepath"\n', ["agents.0", "unknown brain 'telepath'", "boltzmann"]),
    "unknown_field": ('colour = "blue"\n', ["colour"]),
    "unknown_nested_field": ('[compute]\nturbo = true\n', ["compute.turbo"]),
    "bad_brain_params": ('[[agents]]\nbrain = "boltzmann"\nparams = { think_cost = -1 }\n', ["agents.0", "params.think_cost"]),
    "unknown_brain_param": ('[[agents]]\nbrain = "philanthropist"\nparams = { bogus = 1 }\n', ["agents.0", "params.bogus"]),
    "unknown_cost": ('[costs]\nbogus = 1\n', ["costs", "bogus"]),
    "negative_cost": ('[costs]\n"ledger.transfer" = -1\n', ["costs", "ledger.transfer"]),
    "rates_over_total": ('[compute]\ntotal_rate = 1.0\n[[agents]]\nbrain = "boltzmann"\ncount = 5\n', ["total_rate"]),
    "negative_scrip": ('[[agents]]\nbrain = "boltzmann"\nscrip = -1\n', ["agents.0.scrip"]),
    "fractional_scrip": ('[[agents]]\nbrain = "boltzmann"\nscrip = 1.5\n', ["agents.0.scrip", "fractional"]),
    "nan_rate": ('[[agents]]\nbrain = "boltzmann"\nrate = nan\n', ["agents.0.rate", "finite"]),
    "zero_speed": ('[clock]\nspeed = 0\n', ["clock.speed"]),
    "bad_prefix": ('[[agents]]\nbrain = "boltzmann"\nprefix = "Bad Prefix"\n', ["agents.0.prefix"]),
    "zero_max_failures": ('[agents_policy]\nmax_failures = 0\n', ["agents_policy.max_failures"]),
}


@pytest.mark.parametrize("case", sorted(BAD_WORLDS))
def test_malformed_world_file_is_a_config_error_naming_the_field(case, tmp_path):
    text, fragments = BAD_WORLDS[case]
    path = tmp_path / f"{case}.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_world(path)
    message = str(e.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


@pytest.mark.parametrize("case", ["bad_toml", "wrong_type", "negative_count", "unknown_brain", "unknown_field", "bad_brain_params"])
def test_cli_exits_nonzero_with_the_message_on_stderr(case, tmp_path, capsys):
    from tui.cli import main

    text, fragments = BAD_WORLDS[case]
    path = tmp_path / f"{case}.toml"
    path.write_text(text, encoding="utf-8")
    report = tmp_path / "r.json"
    code = main(["run", "--headless", "--world", str(path), "--virtual-time", "--duration", "5", "--report", str(report)])
    err = capsys.readouterr().err
    assert code != 0
    assert "ecology: error:" in err and str(path) in err
    for fragment in fragments:
        assert fragment in err
    assert not report.exists()  # nothing ran


def test_missing_and_unreadable_world_files(tmp_path):
    with pytest.raises(ConfigError, match="no such world file"):
        load_world(tmp_path / "nope.toml")
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b'name = "\xff\xfe"\n')
    with pytest.raises(ConfigError, match="cannot read"):
        load_world(binary)


def test_unknown_scenario_and_bad_agent_count():
    with pytest.raises(ConfigError, match="unknown scenario 'nope'; known: boltzmann, default"):
        load_scenario("nope")
    assert {"default", "boltzmann"} <= set(scenario_names())
    world = load_scenario("default")
    for bad in (0, -5, 2.5, True):
        with pytest.raises(ConfigError, match="--agents"):
            world.with_agents(bad)


def test_cli_rejects_bad_option_values(capsys):
    from tui.cli import main

    # Numbers are held to the world files' bounds, with their messages (issue 13); what is
    # not a number at all is argparse's to refuse. Either way: exit code 2, and why.
    for argv, message in (
        (["run", "--headless", "--agents", "0"], "--agents: Input should be greater than or equal to 1"),
        (["run", "--headless", "--duration", "-1"], "--duration: Input should be greater than 0"),
        (["run", "--headless", "--seed", "x"], "must be a whole number"),
        (["run", "--headless", "--speed", "nan"], "--speed: must be a finite number"),
    ):
        try:
            code = main(argv)
        except SystemExit as e:
            code = e.code
        assert code == 2
        assert message in capsys.readouterr().err
    assert main(["run", "--headless", "--scenario", "nope"]) == 2
    assert "unknown scenario 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize("text", ['seed = true\n', '[[agents]]\nbrain = "boltzmann"\ncount = true\n',
                                  '[[agents]]\nbrain = "boltzmann"\nrate = "2"\n'],
                         ids=["seed_true", "count_true", "rate_string"])
def test_wrong_scalar_types_are_refused_not_coerced(text, tmp_path):
    """Found by this suite: lax validation took `true` as 1 and "2" as 2.0."""
    path = tmp_path / "w.toml"
    path.write_text(text, encoding="utf-8")
    field = {"seed_true": "seed", "count_true": "agents.0.count", "rate_string": "agents.0.rate"}
    with pytest.raises(ConfigError) as e:
        load_world(path)
    assert any(f in str(e.value) for f in field.values()), str(e.value)


def test_embedded_worlds_are_valid():
    for name in scenario_names():
        config = load_scenario(name)
        assert config.agent_count > 0 and config.name == name


# -- refused invocations change nothing ------------------------------------------------------------


def fresh():
    return make_world([{}, {"prefix": "b"}], compute={"total_rate": 10.0})


@pytest.mark.parametrize(
    "target, method, args, code, fragment",
    [
        ("ledger", "transfer", {"to": "b001", "amount": -5}, "invalid", "in [1, 2^53-1], got -5"),
        ("ledger", "transfer", {"to": "b001", "amount": 0}, "invalid", "in [1, 2^53-1], got 0"),
        ("ledger", "transfer", {"to": "b001", "amount": 1.5}, "invalid", "whole number of scrip in [1, 2^53-1], got 1.5"),
        ("ledger", "transfer", {"to": "b001", "amount": 2.0}, "invalid", "whole number of scrip in [1, 2^53-1], got 2.0"),
        ("ledger", "transfer", {"to": "b001", "amount": "3"}, "invalid", "whole number of scrip in [1, 2^53-1], got '3'"),
        ("ledger", "transfer", {"to": "b001", "amount": True}, "invalid", "whole number of scrip in [1, 2^53-1], got True"),
        ("ledger", "transfer", {"to": "b001", "amount": 10**40}, "invalid", "in [1, 2^53-1], got an integer of 41 digits"),
        ("ledger", "transfer", {"to": "b001", "amount": 2**53 - 1}, "insufficient", "insufficient scrip"),
        ("ledger", "transfer", {"to": "ghost", "amount": 1}, "unknown", "unknown recipient 'ghost'"),
        ("ledger", "transfer", {"to": "b001", "amount": 1, "extra": 1}, "invalid", "takes no argument 'extra'; it takes: to, amount"),
        ("ledger", "transfer", {"to": "b001"}, "invalid", "ledger.transfer needs amount"),
        ("ledger", "transfer", {}, "invalid", "needs amount, to"),
        ("ledger", "transfer_compute", {"to": "ghost", "amount": 1.0}, "unknown", "unknown recipient 'ghost'"),
        ("ledger", "transfer_compute", {"to": "b001", "amount": -1.0}, "invalid", "amount must be a number in (0, 10^12] compute units, got -1.0"),
        ("ledger", "transfer_compute", {"to": "b001", "amount": float("nan")}, "invalid", "(0, 10^12] compute units, got nan"),
        ("ledger", "transfer_rate", {"to": "b001", "amount": 100.0}, "insufficient", "insufficient rate"),
        ("ledger", "transfer_artifact", {"artifact": "nothing", "to": "b001"}, "unknown", "unknown artifact 'nothing'"),
        ("ledger", "transfer_artifact", {"artifact": "ledger", "to": "b001"}, "not_owner", "owned by system"),
        ("ledger", "balance", {"of": "ghost"}, "unknown", "unknown principal 'ghost'"),
        ("ledger", "steal", {}, "unknown", "ledger has no method 'steal'; it has: balance"),
        ("rights", "configure", {"agent": "ghost", "brain": "test_script"}, "unknown", "unknown agent 'ghost'"),
        ("world", "pause", {}, "forbidden", "world.pause is for the operator only"),
        ("world", "restart_agent", {"agent": "a001"}, "forbidden", "for the operator only"),
        ("ledger", "set_rate", {"agent": "a001", "rate": 50.0}, "forbidden", "for the operator only"),
        ("ledger", "set_capacity", {"agent": "a001", "capacity": 1e6}, "forbidden", "for the operator only"),
    ],
)
def test_refused_agent_invocation_has_a_reason_and_changes_nothing(target, method, args, code, fragment):
    world = fresh()
    before = state(world, compute=False)
    refusals = world.waist.refusals
    # Straight through the waist: `World.invoke` would take the "principal" argument of
    # ledger.balance as the caller.
    r = world.waist.perform("a001", Invoke(target, method, args), world.clock.now())
    assert not r.ok and r.value is None
    assert r.code == code, r
    assert fragment in r.error, r.error
    assert state(world, compute=False) == before
    assert world.waist.refusals == refusals + 1
    ev = world.bus.recent[-1]
    assert ev.kind == "action_refused" and ev.principal == "a001" and ev.reason == r.error


@pytest.mark.parametrize(
    "method, args, fragment",
    [
        ("restart_agent", {"agent": "ghost"}, "unknown agent 'ghost'"),
        ("restart_agent", {"agent": "a001"}, "has not crashed"),
        ("stop_agent", {"agent": None}, "unknown agent None"),
        ("resume", {}, "not paused"),
        ("resume_agent", {"agent": "a001"}, "not paused"),
        ("set_speed", {"speed": 2.0}, "virtual time"),
        ("pause", {"now": True}, "takes no argument 'now'; it takes: nothing"),
    ],
)
def test_refused_operator_levers_change_nothing_at_all(method, args, fragment):
    world = fresh()
    before = state(world)  # compute included: the operator is never charged
    r = world.invoke("world", method, **args)
    assert not r.ok and fragment in r.error, r.error
    assert state(world) == before


def test_operator_refusals_for_ledger_levers_change_nothing():
    world = fresh()
    before = state(world)
    for args in ({"agent": "ghost", "rate": 1.0}, {"agent": "a001", "rate": -1.0}, {"agent": "a001", "rate": True},
                 {"agent": "a001", "rate": float("inf")}, {"agent": "a001", "rate": 100.0}):
        r = world.invoke("ledger", "set_rate", **args)
        assert not r.ok and r.error, args
    for args in ({"agent": "a001", "capacity": -1}, {"agent": "a001", "capacity": "big"}, {"agent": "ghost", "capacity": 1}):
        assert not world.invoke("ledger", "set_capacity", **args).ok
    assert state(world) == before


def test_unknown_service_is_refused():
    world = fresh()
    before = state(world)
    r = world.invoke("casino", "bet", amount=1)
    assert not r.ok and "casino is not a service" in r.error
    assert state(world) == before


@pytest.mark.anyio
async def test_unknown_service_invoked_by_an_agent_is_refused():
    world = fresh()
    before = state(world, compute=False)
    r = await world.invoke_async("casino", "bet", principal="a001", amount=1)
    assert not r.ok and "unknown artifact 'casino'" in r.error
    r = await world.invoke_async("config:a001", "run", principal="a001")
    assert not r.ok and "not code" in r.error
    assert state(world, compute=False) == before


def test_refused_agent_invocation_charges_the_invoke_cost_only():
    world = make_world([{}, {"prefix": "b"}], costs={"invoke": 0.5, "ledger.transfer": 2.0})
    bucket = world.ledger.buckets["a001"]
    r = world.invoke("ledger", "transfer", principal="a001", to="b001", amount=-1)
    assert not r.ok and bucket.balance == pytest.approx(8.0)  # the attempt costs the method's price
    r = world.invoke("ledger", "nope", principal="a001")
    assert not r.ok and bucket.balance == pytest.approx(7.5)  # an unknown method: the invoke price


def test_bad_artifact_actions_are_refused_and_change_nothing():
    world = fresh()
    perform, now = world.waist.perform, world.clock.now()
    r = perform("b001", Write("mine", "note"), now)
    assert r.ok and r.value == {"artifact_id": "note", "version": 1, "size": 4}
    before = state(world, compute=False)
    cases = [
        (Write("yours now", "note"), "cannot write note: it is owned by b001, not a001"),
        (Delete("note"), "cannot delete note: it is owned by b001"),
        (Delete("config:a001"), "cannot be deleted"),
        (Write({"brain": "x"}, "config:a001"), "its service changes it"),
        (Write("x", None, kind="config"), "cannot write a 'config' artifact"),
        (Write("x", None, kind="genesis"), "writable kinds: code, data"),
        (Write(123, None, kind="code"), "Python source text"),
        (Write("x", "bad id!"), "invalid artifact id 'bad id!'"),
        (Write("x" * 2_000_000, "big"), "content too large"),
        (Read("nothing"), "unknown artifact 'nothing'"),
        (Delete("nothing"), "unknown artifact 'nothing'"),
        (Write("x", "ledger"), "owned by system"),
    ]
    for action, fragment in cases:
        r = perform("a001", action, now)
        assert not r.ok and fragment in r.error, (action.describe(), r.error)
    assert state(world, compute=False) == before


def test_disk_quota_refuses_a_write_and_a_receipt():
    world = make_world([{}, {"prefix": "b"}], agents_policy={"disk_quota": 10})
    perform, now = world.waist.perform, world.clock.now()
    assert perform("a001", Write("12345678", "n1"), now).ok
    assert perform("b001", Write("12345", "n2"), now).ok
    before = state(world, compute=False)
    r = perform("a001", Write("abc", "n3"), now)
    assert not r.ok and r.code == "quota" and "disk quota exceeded: 11 of 10 bytes" in r.error
    r = world.invoke("ledger", "transfer_artifact", principal="a001", artifact="n1", to="b001")
    assert not r.ok and r.code == "quota"
    assert state(world, compute=False) == before
    assert perform("a001", Delete("n1"), now).ok and world.ledger.disk_used["a001"] == 0


@pytest.mark.anyio
async def test_agent_issuing_bad_actions_gets_refusals_and_keeps_running():
    world = fresh()
    bad = [
        Invoke("ledger", "transfer", {"to": "b001", "amount": -1}),
        Invoke("ledger", "transfer", {"to": "ghost", "amount": 1}),
        Invoke("ledger", "transfer", {"to": "b001", "amount": 1.5}),
        Invoke("nowhere", "x"),
        Invoke("ledger", "nope"),
        Invoke("world", "pause"),
        Invoke("ledger", "transfer", "not a table"),
        Read("nothing"),
    ]
    SCRIPTS["a001"] = steps(*bad)
    before = state(world, compute=False)
    await run_world(world, 5.0)
    results = [t.last for t in TURNS["a001"][1:]]
    assert len(results) == len(bad)
    assert all(not r.ok and r.error for r in results)
    assert "unknown artifact 'nowhere'" in results[3].error
    assert "arguments must be a table" in results[6].error
    agent = world.agents["a001"]
    assert agent.refused == len(bad) and agent.total_failures == 0 and not agent.crashed
    assert state(world, compute=False) == before


def test_unhashable_recipient_is_refused_not_raised():
    """Found by this suite: a list recipient raised TypeError out of ledger.transfer."""
    world = fresh()
    before = state(world)
    r = world.invoke("ledger", "transfer", to=["b001"], amount=1)
    assert not r.ok and "unknown recipient" in r.error
    assert state(world) == before


@pytest.mark.anyio
async def test_agent_sending_an_unhashable_recipient_is_refused_not_crashed():
    """Found by this suite: the TypeError counted as a brain failure and crashed the agent."""
    world = make_world([{}, {"prefix": "b"}], agents_policy={"max_failures": 2})
    SCRIPTS["a001"] = steps(*[Invoke("ledger", "transfer", {"to": {"id": "b001"}, "amount": 1})] * 3)
    await run_world(world, 10.0)
    agent = world.agents["a001"]
    assert agent.total_failures == 0 and not agent.crashed
    assert agent.refused == 3 and all(not t.last.ok for t in TURNS["a001"][1:4])


def test_invoke_as_an_unknown_principal_is_refused():
    """Found by this suite: acting as an unknown principal raised KeyError."""
    world = fresh()
    before = state(world)
    r = world.invoke("ledger", "transfer", principal="ghost", to="a001", amount=1)
    assert not r.ok and "ghost" in r.error
    assert state(world) == before


def test_config_right_round_trip_leaves_disk_accounting_unchanged():
    """Config rights are not charged to disk when made, so moving one charges nobody."""
    world = fresh()
    before = dict(world.ledger.disk_used)
    assert world.invoke("ledger", "transfer_artifact", principal="a001", artifact="config:a001", to="b001").ok
    assert world.invoke("ledger", "transfer_artifact", principal="b001", artifact="config:a001", to="a001").ok
    assert world.ledger.disk_used == before


def test_world_file_round_trip_through_parse_world():
    data = {"agents": [{"brain": "boltzmann", "count": 2}], "costs": {"ledger.transfer": 0.25}}
    config = parse_world(data)
    assert config.agent_count == 2 and config.costs.table()["ledger.transfer"] == 0.25
    with pytest.raises(ConfigError, match="^src: agents.0.count"):
        parse_world({"agents": [{"brain": "boltzmann", "count": -1}]}, source="src")


def test_example_world_files_on_disk_are_found(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text('name = "mine"\n[[agents]]\nbrain = "boltzmann"\ncount = 3\n', encoding="utf-8")
    assert load_world(good).agent_count == 3
    assert load_world(Path(str(good))).name == "mine"


def test_rate_cannot_be_given_to_a_service():
    world = fresh()
    assert "ledger" in world.ledger.scrip  # services hold accounts of their own
    before = state(world)
    r = world.invoke("ledger", "transfer_rate", principal="a001", to="ledger", amount=0.5)
    assert not r.ok and "service" in r.error
    assert state(world) == before


def test_scrip_and_artifacts_cannot_be_given_to_a_service():
    world = fresh()
    before = state(world)
    r = world.invoke("ledger", "transfer", principal="a001", to="ledger", amount=1)
    assert not r.ok and "service" in r.error
    world.waist.perform("a001", Write("x", "note"), world.clock.now())
    mid = state(world)
    r = world.invoke("ledger", "transfer_artifact", principal="a001", artifact="note", to="oracle")
    assert not r.ok and "service" in r.error
    assert state(world) == mid and before["scrip"] == mid["scrip"]


def test_the_operators_actions_through_world_act():
    """World.act, the UI's lever for actions that are not a service's method: a write is
    carried out; junk in place of an action, or an unknown principal, is refused unchanged."""
    world = make_world([{"scrip": 10}])
    before = state(world)
    for junk, principal in (("junk", "operator"), (None, "operator"), (Write("x"), "nobody"), (Write("x"), 7)):
        r = world.act(junk, principal=principal)
        assert not r.ok and r.code in ("invalid", "unknown"), r
    assert state(world) == before
    wrote = world.act(Write("hello"))
    assert wrote.ok and world.artifacts.get(wrote.value["artifact_id"]).owner == "operator"
    assert world.act(Read(wrote.value["artifact_id"])).value["content"] == "hello"
    assert not world.act(Delete("nothing-1")).ok
