"""Brains: what decides an agent's next action. A registry of the built-in ones."""

from __future__ import annotations

import random
from typing import Any

from ..bounds import shown
from ..errors import Refusal
from .base import Brain, BrainParams

BRAINS: dict[str, type[Brain]] = {}


def register(cls: type[Brain]) -> type[Brain]:
    BRAINS[cls.name] = cls
    return cls


def brain_class(name: object) -> type[Brain]:
    _load_builtin()
    cls = BRAINS.get(name) if isinstance(name, str) else None
    if cls is None:
        raise Refusal(f"unknown brain {shown(name)}; known brains: {', '.join(sorted(BRAINS))}", "unknown", "brain")
    return cls


def build_brain(name: str, params: dict[str, Any] | None, rng: random.Random) -> Brain:
    cls = brain_class(name)
    return cls(cls.validate_params(params), rng)


_builtin_loaded = False


def _load_builtin() -> None:
    global _builtin_loaded
    if not _builtin_loaded:
        _builtin_loaded = True
        from . import coder, economy, scripted  # noqa: F401  (they register on import)
        from . import llm  # noqa: F401  (openai itself is imported lazily, on the first thought)


__all__ = ["BRAINS", "Brain", "BrainParams", "brain_class", "build_brain", "register"]
