"""The owner and party indexes (engine/indexed.py) say what a scan would, whatever happens."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.indexed import IndexedDict


@dataclass
class Thing:
    owner: str


OWNERS = ["a", "b", "c"]
KEYS = [f"k{i}" for i in range(6)]
op = st.one_of(
    st.tuples(st.just("set"), st.sampled_from(KEYS), st.sampled_from(OWNERS)),
    st.tuples(st.just("del"), st.sampled_from(KEYS), st.none()),
    st.tuples(st.just("pop"), st.sampled_from(KEYS), st.none()),
    st.tuples(st.just("reown"), st.sampled_from(KEYS), st.sampled_from(OWNERS)),
    st.tuples(st.just("reload"), st.none(), st.none()),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(op, max_size=40))
def test_find_answers_what_a_scan_would_in_the_dicts_order(ops):
    d = IndexedDict(lambda t: (t.owner,))
    for name, key, owner in ops:
        if name == "set":
            d[key] = Thing(owner)
        elif name == "del" and key in d:
            del d[key]
        elif name == "pop":
            d.pop(key, None)
        elif name == "reown" and key in d:
            thing = d[key]
            d.reindex(key, lambda: setattr(thing, "owner", owner))
        elif name == "reload":  # what a checkpoint's load does: the same items, anew
            items = list(d.items())
            d.clear()
            d.update(items)
        assert d.consistent()
        for who in OWNERS:
            assert d.find(who) == [t for t in d.values() if t.owner == who]


def test_a_value_changed_behind_the_index_is_caught_by_the_invariant():
    d = IndexedDict(lambda t: (t.owner,))
    d["x"] = Thing("a")
    d["x"].owner = "b"  # not through reindex
    assert not d.consistent()


def test_ways_around_the_index_are_refused():
    d = IndexedDict(lambda t: (t.owner,))
    for call in (lambda: d.setdefault("x", Thing("a")), d.popitem):
        try:
            call()
        except TypeError:
            continue
        raise AssertionError("an IndexedDict took a value around its index")
