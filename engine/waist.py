"""The narrow waist: the one path by which agents and the operator act on the world.

`perform` charges the compute an action costs (the thought plus the action, from the cost
table), enforces `max_debt`, checks the method exists, its arguments are the declared ones
and every number keeps its declared bound, and turns every `Refusal` into a result with its
reason. The operator goes through the same checks but is not charged compute.

The waist is a wall. A genesis method runs with the ledger's undo log open and its events
held back: if it refuses, or raises because of a bug in the engine, its changes are put
back and its events dropped, so a refused call changed nothing. An exception becomes a
loud `engine_error` event (method, arguments, error, invariants checked after) and a
refusal to the caller, never a failure of the caller's brain.

Genesis methods run synchronously (they are pure bookkeeping); only invoking a code
artifact awaits a sandbox, so `perform` returns a coroutine for exactly that case.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Awaitable

from .actions import OK, Action, Delete, Invoke, Noop, Read, Result, Sleep, Write
from .artifacts import WRITABLE_KINDS
from .bounds import SECONDS, shown
from .errors import Refusal
from .events import EVENT_KINDS, ActionRefused, ArtifactDeleted, ArtifactWritten, EngineError
from .ids import OPERATOR

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from .world import World

ACTION_NAMES = ("noop", "read", "write", "delete", "invoke", "sleep")


class Waist:
    def __init__(self, world: World, costs: dict[str, float], max_debt: float | None) -> None:
        self.world = world
        self.genesis: dict[str, Any] = {}
        self.costs = {name: float(costs.get(name, 0.0)) for name in ACTION_NAMES}
        self._method_costs = {k: float(v) for k, v in costs.items() if "." in k}
        self.max_debt = max_debt
        self.refusals = 0
        self.engine_errors = 0  # genesis calls that raised (bugs), each undone and reported
        self._buckets = world.ledger.buckets
        self._ledger = world.ledger


    # -- a checkpoint's view of the waist: its counters ------------------------------------------
    def dump(self) -> dict[str, int]:
        return {"refusals": self.refusals, "engine_errors": self.engine_errors}

    def load(self, state: dict[str, int]) -> None:
        if not all(type(state.get(k)) is int for k in ("refusals", "engine_errors")):
            raise ValueError("the waist's counters must be whole numbers")
        self.refusals, self.engine_errors = state["refusals"], state["engine_errors"]

    def register(self, artifact) -> None:
        self.genesis[artifact.id] = artifact
        for m in artifact.methods.values():
            m.cost = self._method_costs.get(f"{artifact.id}.{m.name}", self.costs["invoke"])

    def help_for(self, target: str, method: str, arg: str) -> str | None:
        """One argument's declared description and bound, as agents read it (a form's
        placeholder, say): e.g. "the loan: whole scrip in [1, 2^53-1]"."""
        service = self.genesis.get(target)
        m = service.methods.get(method) if service is not None else None
        p = m.params.get(arg) if m is not None else None
        return None if p is None else p.help(self.world.config)

    def cost_of(self, action: Action) -> float:
        if type(action) is Invoke:
            target = self.genesis.get(action.target)
            if target is not None:
                m = target.methods.get(action.method)
                if m is not None:
                    return m.cost
        return self.costs.get(action.name, 0.0)

    def perform(
        self, principal: str, action: Action, now: float, think_cost: float = 0.0
    ) -> Result | Awaitable[Result]:
        """Charge and carry out one action. Never raises for a bad action."""
        world = self.world
        charged = principal != OPERATOR
        try:
            if type(action) is Invoke:
                name = action.target
                target = self.genesis.get(name) if type(name) is str else None
                if target is None:
                    if type(name) is not str:
                        self._charge(principal, think_cost, self.costs["invoke"], now, charged)
                        raise Refusal(f"unknown artifact {shown(name)}", "unknown", "target")
                    return self._invoke_code(principal, action, now, think_cost)
                m = target.methods.get(action.method) if type(action.method) is str else None
                if m is None:
                    self._charge(principal, think_cost, self.costs["invoke"], now, charged)
                    raise Refusal(
                        f"{name} has no method {shown(action.method)}; it has: " + ", ".join(sorted(target.methods)),
                        "unknown",
                    )
                if charged:
                    if self.max_debt is None:  # the common case, inlined: accrue, then spend
                        bucket = self._buckets[principal]
                        if bucket.last_update != now:
                            bucket.accrue(now)
                        bucket.balance -= think_cost + m.cost
                    else:
                        self._charge(principal, think_cost, m.cost, now, True)
                args = action.args
                if type(args) is not dict:
                    raise Refusal(f"arguments must be a table of name = value, got {shown(args)}", "invalid")
                if m.exact is None or args.keys() != m.exact:  # not exactly the declared set
                    self._check_args(action, m, args)
                if m.operator_only and principal != OPERATOR:
                    raise Refusal(f"{name}.{m.name} is for the operator only", "forbidden")
                if m.bounds:
                    whole = m.whole  # one whole number in fixed limits (an amount): inlined
                    if whole is None:
                        args = m.check_numbers(args, world.config)
                    else:
                        value = args.get(whole[0])
                        if type(value) is not int or not whole[1] <= value <= whole[2]:
                            args = m.check_numbers(args, world.config)
                # The call, with its changes undoable and its events held back: the same as
                # undo.begin(), bus.hold(), then undo.commit(), bus.release(held), inlined
                # because this runs for every genesis call.
                undo = self._ledger.undo
                if undo.on:
                    value = m.handler(principal, args, now)  # a method calling another
                else:
                    bus = world.bus
                    undo.on = True
                    held = bus.holding = []
                    try:
                        value = m.handler(principal, args, now)
                    except BaseException as e:
                        self._failed(principal, name, m, args, now, e)
                        raise  # a Refusal: it was, or it has become, the caller's refusal
                    undo.on = False
                    if undo.log:
                        undo.log.clear()
                    bus.holding = None
                    for ev in held:
                        if ev.__class__ is tuple:  # an emit, built only if someone listens
                            bus.emit(ev[0], ev[1], ev[2])
                        else:
                            bus.publish(ev)
                return OK if value is None else Result(True, value)
            cost = self.costs.get(action.name)
            if cost is None:
                raise Refusal(f"unknown action {action!r}", "invalid")
            if charged:
                if self.max_debt is None:
                    bucket = self._buckets[principal]
                    if bucket.last_update != now:
                        bucket.accrue(now)
                    bucket.balance -= think_cost + cost
                else:
                    self._charge(principal, think_cost, cost, now, True)
            if type(action) is Noop:
                return OK
            if type(action) is Sleep:
                self._check_sleep(action)
                return OK  # the agent loop does the waiting
            if type(action) is Read:
                art = world.artifacts.get(action.artifact_id, "artifact_id")
                return Result(True, {"content": art.content, **art.summary()})
            if type(action) is Write:
                return Result(True, self._write(principal, action, now))
            if type(action) is Delete:
                art = world.artifacts.delete(principal, action.artifact_id)
                world.bus.publish(ArtifactDeleted(now, art.id, art.owner))
                return OK
            raise Refusal(f"unknown action {action.name!r}", "invalid")
        except Refusal as r:
            self.refusals += 1
            world.bus.publish(ActionRefused(now, principal, action.describe(), r.reason))
            return Result(False, None, r.reason, r.code, r.arg)
        except (TypeError, ValueError, KeyError, RecursionError) as e:
            # Writes, reads and deletes: content of a shape no check foresaw (a dict with
            # keys of mixed types, say). The store checks before it changes anything.
            self.refusals += 1
            reason = f"invalid arguments for {action.describe()}: {type(e).__name__}: {str(e)[:200]}"
            world.bus.publish(ActionRefused(now, principal, action.describe(), reason))
            return Result(False, None, reason, "invalid")

    def _failed(self, principal: str, target: str, m, args: dict[str, Any], now: float, exc: BaseException) -> None:
        """A genesis call raised: put its changes back and drop its events. A `Refusal`
        goes on to the caller as it is; anything else is an engine error, reported, and
        becomes a refusal (raised from here)."""
        world = self.world
        undone = self._ledger.undo.rollback()
        world.bus.drop()
        if isinstance(exc, Refusal) or not isinstance(exc, Exception):
            return  # a refusal; or a cancellation, which is not ours to turn into one
        self._engine_error(principal, f"{target}.{m.name}", args, exc, undone, now)
        raise Refusal(
            f"{target}.{m.name} failed inside the engine ({type(exc).__name__}); the error is reported "
            "and nothing was changed", "engine_error",
        ) from None

    def _engine_error(self, principal: str, method: str, args: dict[str, Any], exc: BaseException,
                      undone: int, now: float) -> None:
        """A bug, not the caller's fault: say so loudly, and check the world is whole."""
        world = self.world
        self.engine_errors += 1
        try:
            broken = sorted(k for k, ok in world.invariants().items() if not ok)
        except Exception as e:  # the check itself failing is one more thing to report
            broken = [f"invariants check failed: {type(e).__name__}: {e}"]
        error = f"{type(exc).__name__}: {str(exc)[:300]}"
        log.error("engine error in %s by %s with %s: %s (%d changes undone; broken invariants: %s)",
                  method, principal, shown(args, 300), error, undone, broken or "none", exc_info=exc)
        world.bus.publish(EngineError(now, principal, method, shown(args, 300), error, undone, broken))

    @staticmethod
    def _check_sleep(action: Sleep) -> None:
        """A sleep's figures and kinds, checked before the agent loop waits on them."""
        if action.seconds is not None:
            SECONDS.check(action.seconds, "seconds")
        if action.timeout is not None:
            SECONDS.check(action.timeout, "timeout")
        kinds = action.until_event
        if kinds is not None:
            if type(kinds) is not tuple or not all(type(k) is str and k in EVENT_KINDS for k in kinds):
                raise Refusal(f"until_event must be event kinds (such as 'loan'), got {shown(kinds)}",
                              "invalid", "until_event")
        if action.until is not None and not callable(action.until):
            raise Refusal(f"until must be a condition, got {shown(action.until)}", "invalid", "until")
        if type(action.only_mine) is not bool:
            raise Refusal(f"only_mine must be true or false, got {shown(action.only_mine)}", "invalid", "only_mine")

    @staticmethod
    def _check_args(action: Invoke, m, args: dict[str, Any]) -> None:
        """Refuse unexpected or missing arguments, naming them."""
        params = m.params
        for key in args:
            if key not in params:
                raise Refusal(
                    f"{action.target}.{m.name} takes no argument {shown(key)}; it takes: "
                    + (", ".join(params) or "nothing"),
                    "invalid",
                )
        missing = sorted(m.required - args.keys())
        if missing:
            raise Refusal(f"{action.target}.{m.name} needs {', '.join(missing)}", "invalid", missing[0])

    def _charge(self, principal: str, think: float, cost: float, now: float, charged: bool) -> None:
        """Take the thought's and the action's compute. Past `max_debt` the action is
        refused, but the thought already happened and is paid for."""
        if not charged:
            return
        bucket = self.world.ledger.buckets[principal]
        max_debt = self.max_debt
        if max_debt is not None and bucket.peek(now) - think - cost < -max_debt:
            bucket.spend(think, now)
            raise Refusal(
                f"would exceed max debt {max_debt:g}: balance {bucket.balance:.2f}, cost {cost:.2f}",
                "max_debt",
            )
        bucket.spend(think + cost, now)

    def _write(self, principal: str, action: Write, now: float) -> dict[str, Any]:
        store = self.world.artifacts
        if action.kind not in WRITABLE_KINDS:
            raise Refusal(
                f"cannot write a {action.kind!r} artifact; writable kinds: {', '.join(sorted(WRITABLE_KINDS))}",
                "invalid",
            )
        if action.kind == "code" and not isinstance(action.content, str):
            raise Refusal("code must be Python source text defining run(...)", "invalid")
        if action.artifact_id is not None and action.artifact_id in store:
            art = store.overwrite(principal, action.artifact_id, action.content, now)
            created = False
        else:
            art = store.create(principal, action.kind, action.content, now, action.artifact_id)
            created = True
        self.world.bus.publish(ArtifactWritten(now, art.id, art.owner, art.kind, art.size, created))
        return {"artifact_id": art.id, "version": art.version, "size": art.size}

    async def _invoke_code(self, principal: str, action: Invoke, now: float, think_cost: float) -> Result:
        """Invoke an executable artifact: runs in the world's sandbox (see containers/)."""
        world = self.world
        try:
            self._charge(principal, think_cost, self.costs["invoke"], now, principal != OPERATOR)
            return await world.code_runs.run(principal, action, now)
        except Refusal as r:
            self.refusals += 1
            world.bus.publish(ActionRefused(now, principal, action.describe(), r.reason))
            return Result(False, None, r.reason, r.code, r.arg)
