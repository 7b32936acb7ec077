"""Hostile numbers at the waist (issue 12): every genesis method, every argument, the values
a language model's JSON or a hostile caller can send (0, ±1, 2^53 ± 1, 10^18, 10^400,
1e308, ±inf, NaN, -0.0, True, "1", None, [], {} and more), by the method's natural caller
and by a stranger. Never an exception out of `world.invoke`; a refusal changes nothing (a
full dump of the world's state, what the journal would write, is compared before and
after); after every accepted call every invariant holds; and no call is an engine error.
A number out of its bound is refused naming the argument and the bound.
"""

from __future__ import annotations

import math

import pytest
from econ import full_state, settle_buckets
from ecotest import all_true
from hostile import EXTREMES, NATURAL, REFUSED_WHEN_NATURAL, args_for, hostile_world, stranger
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.actions import Result
from engine.errors import Refusal


def methods(world):
    return {(s.id, name): m for s in world.waist.genesis.values() for name, m in s.methods.items()}


def invoke(world, target, method, args, who) -> Result:
    r = world.invoke(target, method, args, principal=who)
    assert r.__class__ is Result
    return r


def test_the_table_covers_every_genesis_method_and_its_good_calls_are_accepted():
    world = hostile_world()
    assert set(NATURAL) == set(methods(world))
    for (target, method), (who, args) in NATURAL.items():
        world = hostile_world()
        r = invoke(world, target, method, args_for(world, args), who)
        assert r.ok == ((target, method) not in REFUSED_WHEN_NATURAL), (target, method, r)
        assert all_true(world.invariants())


# Never a number for any bound, whatever its range: refused for every numeric argument.
NEVER = [True, False, "1", "1e308", None, [], [1], {}, {"a": 1}, math.nan, math.inf, -math.inf,
         10**400, -(10**400), 1e308, -1e308]


def never(value) -> bool:
    return any(value is v or (type(value) is type(v) and value == v) for v in NEVER) or value != value


def _bound_refuses(bound, value, config) -> bool:
    try:
        bound.check(value, "x", config)
    except Refusal:
        return True
    return False


def test_every_argument_of_every_method_with_every_extreme_value():
    """Exhaustive: for each method, each of its arguments (and one it does not take) set
    to each extreme value, called by its natural caller and by a stranger."""
    world = hostile_world()
    settle_buckets(world)
    before = full_state(world)
    calls = refused = 0
    for (target, method), (natural, good) in NATURAL.items():
        m = methods(world)[(target, method)]
        bounds = dict(m.bounds)
        for name in [*m.params, "extra"]:
            for value in EXTREMES:
                for who in (natural, stranger(target, method, natural)):
                    args = {**args_for(world, good), name: value}
                    r = invoke(world, target, method, args, who)
                    calls += 1
                    where = (target, method, name, value, who, r)
                    assert world.waist.engine_errors == 0, where
                    if name in bounds and never(value):
                        assert not r.ok, where
                    if r.ok:
                        assert all_true(world.invariants()), where
                        world = hostile_world()  # something changed: start again
                        settle_buckets(world)
                        before = full_state(world)
                        continue
                    refused += 1
                    assert r.error and r.code, where
                    assert full_state(world) == before, where
                    permitted = who == natural or not m.operator_only
                    if name in bounds and permitted and (never(value) or _bound_refuses(bounds[name], value, world.config)):
                        # refused for this number, naming it and its bound
                        assert r.arg == name and r.error.startswith(f"{name} must be"), where
                        assert bounds[name].range_text(world.config) in r.error, where
    assert calls > 4000 and refused > 3500, (calls, refused)


JUNK = st.one_of(
    st.sampled_from(EXTREMES),
    st.integers(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1e12, max_value=1e12),
    st.decimals(allow_nan=False, allow_infinity=False, places=9).map(float),
    st.text(max_size=4),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), steps=st.integers(1, 4))
def test_random_hostile_calls_never_escape_and_a_refusal_changes_nothing(data, steps):
    """Sequences of calls on one world, each with some arguments replaced by junk, by the
    natural caller or a stranger; accepted ones change the world for the next."""
    world = hostile_world()
    table = methods(world)
    for _ in range(steps):
        target, method = data.draw(st.sampled_from(sorted(NATURAL)))
        natural, good = NATURAL[(target, method)]
        m = table[(target, method)]
        args = args_for(world, good)
        names = [*m.params, "extra"]
        for name in data.draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True)):
            args[name] = data.draw(JUNK)
        if data.draw(st.booleans()):
            args.pop(data.draw(st.sampled_from(sorted(args))), None)
        who = data.draw(st.sampled_from([natural, stranger(target, method, natural), "operator"]))
        settle_buckets(world)
        before = full_state(world)
        r = invoke(world, target, method, args, who)
        assert world.waist.engine_errors == 0, (target, method, args, r)
        if r.ok:
            assert all_true(world.invariants()), (target, method, args, world.invariants())
        else:
            assert r.error and r.code
            assert full_state(world) == before, (target, method, args, r)


@pytest.mark.parametrize("value", [10**400, 1e308, math.inf, math.nan, -1.0, 0, -0.0, True, "2", None, [], {}, 10**7])
def test_set_speed_on_a_real_clock_refuses_what_it_cannot_hold(value):
    world = hostile_world()
    before = full_state(world)
    r = world.invoke("world", "set_speed", speed=value)
    assert not r.ok and r.arg == "speed" and "(0, 10^6]" in r.error, r
    assert full_state(world) == before and world.clock.speed == 1.0
    assert world.invoke("world", "set_speed", speed=10**6).ok and world.clock.speed == 1e6
    assert world.invoke("world", "set_speed", speed=0.001).ok and world.clock.speed == 0.001


@settings(max_examples=200, deadline=None)
@given(target=st.one_of(st.sampled_from(["ledger", "contracts", "world"]), st.sampled_from(EXTREMES)),
       method=st.one_of(st.sampled_from(["transfer", "offer", "set_speed"]), st.sampled_from(EXTREMES)),
       arguments=st.one_of(st.none(), st.sampled_from(EXTREMES), st.dictionaries(st.text(max_size=3), JUNK, max_size=3)),
       who=st.one_of(st.sampled_from(["a001", "operator"]), st.sampled_from(EXTREMES)))
def test_junk_in_place_of_the_target_method_arguments_or_caller_is_refused(target, method, arguments, who):
    world = hostile_world()
    settle_buckets(world)
    before = full_state(world)
    r = invoke(world, target, method, arguments, who)
    if not r.ok:
        assert r.error and full_state(world) == before
    assert world.waist.engine_errors == 0
