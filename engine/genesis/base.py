"""What a genesis artifact is: a service of the world with named, priced methods.

A method declares its parameters once, with `@method`: each one's description, and for a
number its kind, bounds and unit (`engine.bounds`). That one declaration drives the narrow
waist's checks (unknown methods, unexpected or missing arguments, and every number out of
its bounds are refused, naming the argument and the bound, before the handler runs), the
vocabulary a language model reads, and the help the UI shows. Each handler then refuses
what only it can judge (an unknown id, too little scrip) before changing anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from ..bounds import Bound

if TYPE_CHECKING:
    from ..ports import Services


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter: what it is, and for a number, the bound its values must keep."""

    doc: str
    bound: Bound | None = None

    def help(self, config: Any = None) -> str:
        """The description with the bound, e.g. "the loan's principal: whole scrip in [1, 2^53-1]"."""
        if self.bound is None:
            return self.doc
        return f"{self.doc}: {self.bound.describe(config)}" if self.doc else self.bound.describe(config)


@dataclass(slots=True)
class GenesisMethod:
    name: str
    handler: Callable[[str, dict[str, Any], float], Any]  # (caller, args, now) -> value
    params: dict[str, Param]
    required: frozenset[str]
    doc: str
    operator_only: bool = False
    cost: float = 0.0  # set from the world's cost table
    exact: frozenset[str] | None = None  # all parameters required: one comparison checks them
    bounds: tuple[tuple[str, Bound], ...] = field(default=())  # the numeric parameters
    _checks: tuple[tuple[str, Callable[[Any, Any], Any]], ...] = field(default=(), repr=False)
    # The commonest declaration, one whole number in fixed limits (a transfer's amount):
    # (name, low, high), which the waist checks inline before calling `check_numbers`.
    whole: tuple[str, int, int] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.required == frozenset(self.params):
            self.exact = self.required
        self.bounds = tuple((n, p.bound) for n, p in self.params.items() if p.bound is not None)
        self._checks = tuple((n, b.checker(n)) for n, b in self.bounds)
        whole = self.bounds[0][1].whole_range() if len(self.bounds) == 1 else None
        if whole is not None:
            self.whole = (self.bounds[0][0], *whole)

    def check_numbers(self, args: dict[str, Any], config: Any) -> dict[str, Any]:
        """`args` with every numeric argument checked against its bound (normalised: -0.0 is
        0.0, an int for a real is a float), or a `Refusal` naming the argument and bound.
        The caller's dict is never changed."""
        out = args
        for name, check in self._checks:
            if name in args:
                value = args[name]
                checked = check(value, config)
                if checked is not value:
                    if out is args:
                        out = dict(args)
                    out[name] = checked
        return out


def method(name: str, doc: str, *, operator_only: bool = False, optional: tuple[str, ...] = (),
           **params: str | Param):
    """Mark a handler as a genesis method with its parameters: a description, or a `Param`
    with the description and, for a number, its bound."""

    def mark(fn):
        declared = {k: v if isinstance(v, Param) else Param(v) for k, v in params.items()}
        fn._genesis = (name, doc, operator_only, frozenset(params) - frozenset(optional), declared)
        return fn

    return mark


class GenesisArtifact:
    id: str = "genesis"
    description: str = ""

    def __init__(self, world: Services) -> None:
        self.world = world
        self.methods: dict[str, GenesisMethod] = {}
        for attr in dir(type(self)):
            fn = getattr(type(self), attr)
            spec = getattr(fn, "_genesis", None)
            if spec is not None:
                name, doc, op_only, required, params = spec
                self.methods[name] = GenesisMethod(
                    name, getattr(self, attr), dict(params), required, doc, op_only
                )

    def describe(self) -> dict[str, Any]:
        """The service as agents and the UI read it: each method's doc, cost, and parameters
        (name -> description with its bound; `bounds` has the numeric ones as data)."""
        config = self.world.config
        return {
            "id": self.id,
            "description": self.description,
            "methods": {
                m.name: {
                    "doc": m.doc,
                    "params": {n: p.help(config) for n, p in m.params.items()},
                    "optional": sorted(set(m.params) - m.required),
                    "bounds": {n: bound_data(b, config) for n, b in m.bounds},
                    "cost": m.cost,
                    "operator_only": m.operator_only,
                }
                for m in self.methods.values()
            },
        }


def bound_data(bound: Bound, config: Any) -> dict[str, Any]:
    """A bound as JSON-able data (for a form's validation, say)."""
    low, high = bound.limits(config)
    return {
        "kind": bound.kind, "low": None if low is None else float(low) if bound.kind != "scrip" else low,
        "high": None if high is None else float(high) if bound.kind != "scrip" else high,
        "low_open": bound.low_open, "high_open": bound.high_open, "unit": bound.unit,
        "text": bound.describe(config),
    }
