"""Brains: what decides an agent's next action. The registry of brains by name.

The built-in brains are imported here, once, and each brain module imports only
`base`, the ports and the layers below; nothing in a brain module reaches back to
this registry. A brain added later (a test's, a plugin's) is `register`ed, which also
declares its parameters to the config (`engine.brain_params`).
"""

from __future__ import annotations

import random
from typing import Any

from ..brain_params import declare, params_for
from .base import Brain, BrainParams
from .coder import Coder
from .economy import Borrower, Builder, Lender, Trader
from .llm import LLMBrain
from .scripted import Boltzmann, Dreamer, Founder, Philanthropist, Rescuer

BRAINS: dict[str, type[Brain[Any]]] = {
    cls.name: cls
    for cls in (Boltzmann, Philanthropist, Dreamer, Rescuer, Founder, Builder, Trader, Lender, Borrower, Coder,
                LLMBrain)
}


def register(cls: type[Brain[Any]]) -> type[Brain[Any]]:
    """Add a brain (a class decorator): agents and world files may name it from now on."""
    BRAINS[cls.name] = cls
    declare(cls.name, cls.Params)
    return cls


def brain_class(name: object) -> type[Brain[Any]]:
    """The brain called `name`, or a refusal naming the brains there are."""
    params_for(name)  # refuses an unknown name, in the words a world file's check uses
    return BRAINS[name]  # type: ignore[index]  # a str: params_for checked it


def build_brain(name: str, params: dict[str, Any] | None, rng: random.Random) -> Brain[Any]:
    cls = brain_class(name)
    return cls(cls.validate_params(params), rng)


__all__ = ["BRAINS", "Brain", "BrainParams", "brain_class", "build_brain", "register"]
