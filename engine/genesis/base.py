"""What a genesis artifact is: a service of the world with named, priced methods.

A method declares its parameters (name -> description, shown to agents and in the UI);
the narrow waist refuses unknown methods and unexpected arguments before the handler
runs, and each handler refuses bad values with a `Refusal` before changing anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from ..world import World


@dataclass(slots=True)
class GenesisMethod:
    name: str
    handler: Callable[[str, dict[str, Any], float], Any]  # (caller, args, now) -> value
    params: dict[str, str]
    required: frozenset[str]
    doc: str
    operator_only: bool = False
    cost: float = 0.0  # set from the world's cost table
    exact: frozenset[str] | None = None  # all parameters required: one comparison checks them

    def __post_init__(self) -> None:
        if self.required == frozenset(self.params):
            self.exact = self.required


def method(name: str, doc: str, *, operator_only: bool = False, optional: tuple[str, ...] = (), **params: str):
    """Mark a handler as a genesis method with its parameters and their descriptions."""

    def mark(fn):
        fn._genesis = (name, doc, operator_only, frozenset(params) - frozenset(optional), params)
        return fn

    return mark


class GenesisArtifact:
    id: str = "genesis"
    description: str = ""

    def __init__(self, world: World) -> None:
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
        return {
            "id": self.id,
            "description": self.description,
            "methods": {
                m.name: {"doc": m.doc, "params": m.params, "cost": m.cost, "operator_only": m.operator_only}
                for m in self.methods.values()
            },
        }

