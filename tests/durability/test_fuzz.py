"""Fuzz: world files and every genesis method's arguments. Never a crash: a world file is
loaded or refused with a ConfigError naming the problem; a method call succeeds or is
refused with a reason, and a refusal changes nothing."""

from __future__ import annotations

import copy
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.clock import VirtualClock
from engine.config import ConfigError, load_scenario, load_world, parse_world
from engine.world import World

FIELD_NAMES = [
    "name", "seed", "clock", "speed", "virtual", "epoch", "compute", "total_rate", "default_capacity",
    "max_debt", "costs", "noop", "write", "ledger.transfer", "operator", "scrip", "rate", "capacity",
    "agents", "brain", "count", "params", "think_cost", "prefix", "oracle", "slots", "min_bid",
    "mint_ratio", "metrics", "interval", "sandbox", "hosts", "memory_mb", "contracts", "bogus",
]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.sampled_from(["boltzmann", "dreamer", "nope", "unix:///x", "", "-1", "1e309"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(FIELD_NAMES), inner, max_size=5),
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(FIELD_NAMES), values, max_size=8))
def test_any_world_structure_loads_or_is_refused_clearly(data):
    try:
        config = parse_world(data, source="fuzz")
    except ConfigError as e:
        assert str(e).startswith("fuzz: ") and len(str(e)) > len("fuzz: ")
    else:
        World(config, clock=VirtualClock())  # what validates must also build


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=string.printable, max_size=200))
def test_any_text_as_a_world_file_loads_or_is_refused_clearly(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("w") / "world.toml"
    path.write_text(text)
    try:
        load_world(path)
    except ConfigError as e:
        assert str(path) in str(e)


BASE = load_scenario("default")
WORLD = World(BASE, clock=VirtualClock())
METHODS = sorted((sid, name, tuple(m.params)) for sid, svc in WORLD.services.items() for name, m in svc.methods.items())
PRINCIPALS = ["operator", "a001", "t001", "l001", "b001", "ghost", "market", ""]
ids = st.sampled_from(["a001", "a002", "w001", "config:a001", "config:t003", "rate-1", "loan-1",
                       "listing-1", "data-1", "ledger", "market", "ghost", ""])
arg_values = st.one_of(scalars, ids, st.lists(scalars, max_size=3), st.dictionaries(st.text(max_size=4), scalars, max_size=3))


def state(world: World):
    ledger = world.ledger
    return (
        dict(ledger.scrip), dict(ledger.held), dict(ledger.rate_micro), dict(ledger.sliced_micro),
        {p: (b.balance, b.capacity) for p, b in ledger.buckets.items()},
        {a: (x.owner, x.version, x.kind) for a, x in world.artifacts.by_id.items()},
        sorted(world.oracle.bids), sorted(world.market.open), sorted(world.agents),
        {c: a.content["status"] for c, a in world.contracts.contracts.items()},
        world.paused,
    )


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(METHODS),
    st.sampled_from(PRINCIPALS),
    st.data(),
)
def test_every_genesis_method_refuses_bad_arguments_cleanly(method, caller, data):
    service, name, params = method
    keys = data.draw(st.lists(st.sampled_from(list(params) + ["bogus", "amount", "to"]), max_size=5, unique=True))
    args = {k: data.draw(arg_values) for k in keys}
    world = copy.deepcopy(WORLD)
    before = state(world)
    result = world.invoke(service, name, args, principal=caller)
    assert result.ok in (True, False)
    if not result.ok:
        assert isinstance(result.error, str) and result.error and "Traceback" not in result.error
        # A refused call changes nothing but, for an agent, the compute it paid to ask.
        after = state(world)
        assert after[:4] == before[:4] and after[5:] == before[5:], (service, name, args, result.error)
    assert all(world.invariants().values()), (service, name, args)
