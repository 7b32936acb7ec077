"""A checkpoint's fast writer means exactly what the plain JSON writer means.

The writer encodes with orjson and reuses the JSON of what did not change; generators are
read in place instead of through `getstate()`. Each shortcut is checked here against the
slow path it replaces: values orjson refuses or would change (integers past 64 bits, inf
and nan), streams at any position, and changes made in place to what the writer caches.
"""

from __future__ import annotations

import json
import math
import random
import zlib
from unittest import mock

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import random_stream
from engine.actions import Result
from engine.checkpoint import CheckpointError, Cursors, capture, capture_encoded, capture_json, decode, restore
from engine.config import load_scenario
from engine.plain import decode as plain_decode
from engine.plain import encode as plain_encode
from engine.world import World


def small_world(seconds: float = 20.0) -> World:
    config = load_scenario("default").with_agents(12)
    world = World(config.model_copy(update={"seed": 5, "clock": config.clock.model_copy(update={"virtual": True})}))
    anyio.run(lambda: world.run(seconds))
    return world


def same(a: object, b: object) -> bool:
    """Equal, with nan equal to nan (and an int never equal to a float)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


ODD = {"big": 2**70, "negative": -(2**80), "inf": float("inf"), "-inf": float("-inf"), "nan": float("nan"),
       "tuple": (1, float("inf"), 2**64), "fine": [0.1, 1e16, -0.0]}


def test_plain_values_json_cannot_write_come_back():
    for value in (ODD, float("inf"), [float("nan")], {1: float("-inf")}):
        text = json.dumps(plain_encode(value), allow_nan=False)  # nothing JSON itself lacks
        assert same(plain_decode(json.loads(text)), value)


def test_values_orjson_refuses_or_would_change_come_back_exactly():
    world = small_world()
    aid = sorted(world.agents)[0]
    world.agents[aid].view.last_result = Result(True, ODD)
    art = world.artifacts.create(aid, "data", ODD, world.clock.now())
    text = capture_json(world, Cursors())
    assert b"1180591620717411303424" in text and b"NaN" not in text and b"Infinity" not in text
    assert json.loads(text) == json.loads(json.dumps(capture(world)))
    back = restore(world.config, decode(capture_encoded(world, Cursors())))
    assert same(back.agents[aid].view.last_result.value, ODD)
    assert same(back.artifacts.by_id[art.id].content, ODD)


def test_a_checkpoint_is_read_the_same_by_the_fast_reader_and_one_from_before_exactly():
    world = small_world()
    aid = sorted(world.agents)[0]
    world.agents[aid].view.last_result = Result(True, ODD)
    blob = capture_encoded(world, Cursors())
    text = zlib.decompress(blob)
    assert text.startswith(b'{"format":1,"plain":2,')  # read with orjson
    assert decode(blob) == json.loads(text)
    # A checkpoint from before plain values were tagged: a big integer as itself, read exactly.
    before = json.loads(text)
    del before["plain"]
    before["agents"][0][1]["result"][1] = {"big": 2**70}
    state = decode(zlib.compress(json.dumps(before, separators=(",", ":")).encode()))
    assert state["agents"][0][1]["result"][1]["big"] == 2**70


def test_a_checkpoint_nested_past_any_parser_is_refused():
    deep = b'{"format":1,"plain":2,"t":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(CheckpointError, match="damaged"):
        decode(zlib.compress(deep))


def test_the_writer_sees_changes_made_in_place_and_what_is_gone():
    world = small_world()
    cursors = Cursors()
    capture_json(world, cursors)
    owner = sorted(world.agents)[1]
    config = world.artifacts.by_id[f"config:{owner}"]
    config.meta["price"] = 12345  # in place: no new version, no new time
    data = world.artifacts.create(owner, "data", {"n": 1}, world.clock.now())
    capture_json(world, cursors)
    world.artifacts.delete(owner, data.id)
    again = world.artifacts.create(owner, "data", {"n": 2}, world.clock.now(), artifact_id=data.id)
    assert again.version == data.version and again.updated == data.updated  # the same signature but content
    text = capture_json(world, cursors)
    assert json.loads(text) == json.loads(json.dumps(capture(world)))
    rows = {r[0]: r for r in json.loads(text)["artifacts"]["artifacts"]}
    assert rows[config.id][8] == plain_encode(config.meta) and rows[data.id][3] == {"n": 2}
    world.artifacts.delete(owner, data.id)
    capture_json(world, cursors)
    assert data.id not in cursors.artifacts.sigs and data.id not in cursors.artifacts.json


DRAWS = st.lists(st.sampled_from(["random", "bits", "gauss", "shuffle", "many"]), max_size=300)


@settings(max_examples=60, deadline=None)
@given(DRAWS, st.integers(0, 3))
def test_a_stream_read_in_place_says_what_getstate_says(draws, seed):
    assert random_stream._IN_PLACE  # CPython: the fast path is on (the checkpoint's cost depends on it)
    rng, name = random.Random(f"seed {seed}"), f"seed {seed}"
    fast, slow = random_stream.StreamCursor(), random_stream.StreamCursor()
    for i, draw in enumerate(draws):
        if draw == "random":
            rng.random()
        elif draw == "bits":
            rng.getrandbits(1 + i % 90)
        elif draw == "gauss":
            rng.gauss(0.0, 1.0)
        elif draw == "shuffle":
            rng.shuffle(list(range(20)))
        else:
            for _ in range(400):
                rng.random()
        dumped = random_stream.dump(rng, name, fast)
        with mock.patch.object(random_stream, "_IN_PLACE", False):
            assert dumped == random_stream.dump(rng, name, slow)
    dumped = random_stream.dump(rng, name, fast)
    memo: dict = {}
    built, again = random_stream.load(dumped, memo), random_stream.load(dumped, memo)  # twisted; memoised
    with mock.patch.object(random_stream, "_IN_PLACE", False):
        slow = random_stream.load(dumped, {})  # through setstate()
    for back in (built, again, slow):
        assert back.getstate() == rng.getstate()
    ahead = [rng.random() for _ in range(700)]
    assert all([back.random() for _ in range(700)] == ahead for back in (built, again, slow))


def test_kept_records_dump_none_with_recent_zero():
    world = small_world(130.0)  # a resolution or two
    assert world.oracle.resolutions and world.market.dump(recent=0)["closed"] == []
    assert world.oracle.dump(recent=0)["resolutions"] == []
    assert world.oracle.dump(recent=1)["resolutions"] == [world.oracle.resolutions[-1]]
