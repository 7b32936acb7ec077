"""The waist is a wall (issue 12): an exception inside a genesis method is an engine error,
not the caller's. It becomes a loud `engine_error` event naming the method and arguments,
the call's changes are put back, the caller gets a refusal, and the invariants are checked.

The fault is injected at every point where a method changes the world or announces a
change: the undo log is told of each change just before it is made, and events are
published after, so a log (or a bus) that raises at its k-th use stops the method there. For every genesis method and every k until the method
completes, the world must be exactly as before (a full state dump), with every invariant
true and none of the call's own events published.
"""

from __future__ import annotations

import logging

import pytest
from econ import full_state, settle_buckets
from ecotest import all_true, make_world, run_world, steps
from hostile import NATURAL, REFUSED_WHEN_NATURAL, args_for, hostile_world

import ecotest
from engine.actions import Invoke
from engine.errors import Refusal
from engine.undo import Undo


class Injected(RuntimeError):
    pass


class FaultyUndo(Undo):
    """An undo log that raises at its k-th entry of a call (a stand-in for any bug). The
    entries are counted where they are appended, so a change recorded by appending to the
    log directly (the ledger's transfer does, for speed) is a fault point too."""

    __slots__ = ("countdown", "entries")

    def __init__(self, k: int) -> None:
        super().__init__()
        self.countdown = k
        self.entries = 0
        self.log = TickingLog(self)

    def _tick(self) -> None:
        if self.on:
            self.entries += 1
            if self.entries == self.countdown:
                raise Injected(f"fault injected before change {self.countdown}")


class TickingLog(list):
    def __init__(self, undo: FaultyUndo) -> None:
        super().__init__()
        self.undo = undo

    def append(self, entry) -> None:
        self.undo._tick()
        super().append(entry)


@pytest.fixture(autouse=True)
def _quiet_engine_errors(caplog):
    caplog.set_level(logging.CRITICAL, logger="engine.waist")  # they are expected here


@pytest.mark.parametrize("target, method", sorted(set(NATURAL) - REFUSED_WHEN_NATURAL))
def test_a_fault_at_any_change_of_any_method_is_undone_and_reported(target, method):
    who, good = NATURAL[(target, method)]
    faults = 0
    for k in range(1, 200):
        world = hostile_world()
        settle_buckets(world)
        before = full_state(world)
        seq = world.bus.seq
        world.ledger.undo = faulty = FaultyUndo(k)
        publish = world.bus.publish

        def faulty_publish(ev, publish=publish, faulty=faulty):
            faulty._tick()
            publish(ev)

        world.bus.publish = faulty_publish
        args = args_for(world, good)
        r = world.invoke(target, method, args, principal=who)
        if r.ok:  # the method made fewer than k changes: every point has been tried
            assert world.ledger.undo.entries < k
            break
        faults += 1
        assert r.code == "engine_error" and f"{target}.{method} failed inside the engine" in r.error, r
        assert "Injected" in r.error and "nothing was changed" in r.error
        assert full_state(world) == before, (target, method, k)
        assert all_true(world.invariants())
        new = [ev for ev in world.bus.recent if ev.seq > seq]
        # Only the report and the refusal: the call's own events were never published.
        assert [ev.kind for ev in new] == ["engine_error", "action_refused"], [ev.kind for ev in new]
        err = new[0]
        assert err.method == f"{target}.{method}" and err.principal == who
        assert err.undone <= k - 1 and err.broken == []
        assert "Injected: fault injected before change" in err.error
        for key in args:
            assert repr(key) in err.args
        assert world.waist.engine_errors == 1
    else:
        pytest.fail(f"{target}.{method} never completed")
    # Read-only methods change nothing, so nothing can be injected into them.
    read_only = {"balance", "owner", "rights", "open_bids", "last_resolution", "listings", "owed", "credit", "mine"}
    assert (faults == 0) == (method in read_only), (target, method, faults)


def test_accept_that_fails_after_moving_the_principal_moves_it_back():
    """The principal has reached the debtor when the due time is pushed on the heap: a
    fault there must put the principal back in escrow and the offer back as offered."""
    world = hostile_world()
    contracts = world.contracts

    def broken_push(due, contract_id):
        assert world.ledger.scrip["a002"] == scrip_before + 20  # the money had moved
        raise ZeroDivisionError("a bug after the money moved")

    scrip_before = world.ledger.scrip["a002"]
    held_before = world.ledger.held["contracts"]
    contracts._push_due = broken_push
    r = world.invoke("contracts", "accept", principal="a002", contract="loan-1")
    assert not r.ok and r.code == "engine_error" and "ZeroDivisionError" in r.error
    assert world.ledger.scrip["a002"] == scrip_before and world.ledger.held["contracts"] == held_before
    c = contracts.contracts["loan-1"].content
    assert c["status"] == "offered" and c["accepted_at"] is None and len(c["history"]) == 1
    assert all_true(world.invariants())
    assert world.bus.recent[-2].kind == "engine_error" and world.bus.recent[-2].method == "contracts.accept"


def test_a_refusal_after_a_change_is_undone_too():
    """A method refused half-way (here the store refuses the new contract artifact after
    the principal was held) leaves nothing behind: a refusal is rolled back like a fault."""
    world = hostile_world()
    settle_buckets(world)
    before = full_state(world)
    create = world.artifacts.create

    def full_store(*args, **kw):
        raise Refusal("the store is full", "quota")

    world.artifacts.create = full_store
    r = world.invoke("contracts", "offer", {"debtor": "a002", "principal": 5, "rate_per_day": 0.1, "due_in": 60.0},
                     principal="a001")
    assert not r.ok and r.code == "quota" and world.waist.engine_errors == 0, r
    assert full_state(world) == before
    world.artifacts.create = create
    assert world.invoke("contracts", "offer", {"debtor": "a002", "principal": 5, "rate_per_day": 0.1,
                                                "due_in": 60.0}, principal="a001").value["contract"] == "loan-3"


def test_an_artifact_named_like_the_next_loan_does_not_block_lending():
    world = hostile_world()
    world.artifacts.create("a003", "data", "squatting", 0.0, "loan-3")
    r = world.invoke("contracts", "offer", {"debtor": "a002", "principal": 5, "rate_per_day": 0.1, "due_in": 60.0},
                     principal="a001")
    assert r.ok and r.value["contract"] == "loan-4", r
    assert all_true(world.invariants())


@pytest.mark.anyio
async def test_an_engine_error_is_not_a_brain_failure():
    """An agent whose call hits an engine bug is refused, not failed: it never crashes."""
    world = make_world([{"scrip": 50}, {"prefix": "b"}])

    def broken(caller, args, now):
        world.ledger.transfer_scrip(caller, "b001", 1)
        raise KeyError("a bug")

    world.services["ledger"].methods["transfer"].handler = broken
    ecotest.SCRIPTS["a001"] = steps(*[Invoke("ledger", "transfer", {"to": "b001", "amount": 1})] * 12)
    await run_world(world, 10.0)
    agent = world.agents["a001"]
    assert agent.total_failures == 0 and not agent.crashed and agent.refused == 12
    assert world.ledger.scrip["a001"] == 50 and world.waist.engine_errors == 12
    assert world.bus.counts["engine_error"] == 12 and all_true(world.invariants())
