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

    def decide(self, view: Observation) -> Action:
        raise NotImplementedError

    @classmethod
    def validate_params(cls, params: dict[str, Any] | None) -> BrainParams:
        return cls.Params.model_validate(params or {})


__all__ = ["Brain", "BrainParams"]
