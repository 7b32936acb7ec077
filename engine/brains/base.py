"""The brain protocol: given an observation, return an action and say what the thought cost.

A brain is built from its validated parameters and the agent's own seeded random stream,
so a scripted world is deterministic for a given seed. `thought_cost` is read right after
each `decide`; an LLM brain sets it from the tokens it used. The waist keeps no action
past `perform`, so a brain may return the same action object again (re-aimed).
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from ..brain_params import BrainParams
from ..plain import decode, encode

if TYPE_CHECKING:
    from ..actions import Action
    from ..ports import Observation

P = TypeVar("P", bound=BrainParams)


class Brain(Generic[P]):
    """A brain, typed by the parameters it takes (`Brain[BoltzmannParams]`)."""

    name: ClassVar[str] = "brain"
    Params: ClassVar[type[BrainParams]] = BrainParams
    is_async: ClassVar[bool] = False  # True when decide() returns an awaitable
    summary: ClassVar[str] = ""

    def __init__(self, params: P, rng: random.Random) -> None:
        self.params: P = params
        self.rng = rng
        self.thought_cost = params.think_cost

    # The attributes that are the brain's memory, what it learned since it was built: a
    # checkpoint keeps them (with the agent's random stream), so a brain brought back
    # decides as the one recorded would have.
    memory: ClassVar[tuple[str, ...]] = ()

    def decide(self, view: Observation) -> Action:
        raise NotImplementedError

    def dump(self) -> dict[str, Any]:
        return {"thought_cost": self.thought_cost, **{n: encode(getattr(self, n)) for n in self.memory}}

    def load(self, state: dict[str, Any]) -> None:
        """Take back a dumped memory. Every value is checked against the kind the brain
        keeps there before any is set (a journal is hostile input)."""
        values = {}
        for name in self.memory:
            if name not in state:
                continue
            value, now = decode(state[name]), getattr(self, name)
            if not (value is None or now is None or type(value) is type(now)):
                raise ValueError(f"{self.name} brain: {name} must be a {type(now).__name__}, "
                                 f"not a {type(value).__name__}")
            values[name] = value
        cost = state.get("thought_cost", self.thought_cost)
        if type(cost) not in (int, float) or not cost >= 0:
            raise ValueError(f"{self.name} brain: thought_cost must be a number >= 0")
        for name, value in values.items():
            setattr(self, name, value)
        self.thought_cost = float(cost)

    @classmethod
    def validate_params(cls, params: dict[str, Any] | None) -> BrainParams:
        return cls.Params.model_validate(params or {})


__all__ = ["Brain", "BrainParams"]
