"""Plain values as JSON and back, exactly: what a checkpoint keeps of results and memories.

JSON has no tuples, sets or non-string keys, and a brain that reads `last.value` may care
(a tuple compared with `==`, a set of ids). `encode` turns such values into tagged JSON
(`{"~t": [...]}` a tuple, `{"~s": [...]}` a set, `{"~d": [[k, v], ...]}` a dict with other
keys, `{"~b": "hex"}` bytes, `{"~f": "inf"}` a float JSON cannot write: inf, -inf, nan;
`{"~i": "digits"}` an integer past 64 bits, which fast JSON libraries refuse or read as a
float) and `decode` turns them back; dicts, lists, strings, ints, finite floats (repr
round-trips), bools and None pass as they are. Anything else (an object) becomes
`{"~r": repr}`: kept for the eye, not for the engine.

`decode` reads hostile input (a journal from elsewhere): it builds only these types.
"""

from __future__ import annotations

from typing import Any

_TAGS = ("~t", "~s", "~d", "~b", "~r", "~f", "~i")
SIXTY_FOUR_BITS = (-(2**63), 2**64)  # the integers orjson writes and reads as integers
_NON_FINITE = {"inf": float("inf"), "-inf": float("-inf"), "nan": float("nan")}


def encode(value: Any) -> Any:
    t = type(value)
    if t is str or t is bool or value is None:
        return value
    if t is int:
        return value if SIXTY_FOUR_BITS[0] <= value < SIXTY_FOUR_BITS[1] else {"~i": str(value)}
    if t is float:
        # (x - x is 0.0 for every finite x, nan for inf and nan)
        return value if value - value == 0.0 else {"~f": repr(value)}
    if t is list:
        return [encode(v) for v in value]
    if t is dict:
        if all(type(k) is str for k in value) and not (len(value) == 1 and next(iter(value)) in _TAGS):
            return {k: encode(v) for k, v in value.items()}
        return {"~d": [[encode(k), encode(v)] for k, v in value.items()]}
    if t is tuple:
        return {"~t": [encode(v) for v in value]}
    if t is set or t is frozenset:
        # Sorted by their encoding: a set's own order depends on the hash seed.
        return {"~s": sorted((encode(v) for v in value), key=repr)}
    if t is bytes:
        return {"~b": value.hex()}
    if isinstance(value, (int, float, str)):  # a subclass (an IntEnum, a Written float)
        return encode(_base(value))
    return {"~r": repr(value)}


def _base(value: Any) -> Any:
    for base in (bool, int, float, str):
        if isinstance(value, base):
            return base(value)
    return repr(value)  # pragma: no cover


# What JSON gives that decodes as itself: not called for (a restore decodes 10^5 values).
_LEAVES = frozenset({str, int, float, bool, type(None)})


def decode(value: Any) -> Any:
    t = type(value)
    if t is list:
        return [v if type(v) in _LEAVES else decode(v) for v in value]
    if t is dict:
        if len(value) == 1:
            (tag, inner), = value.items()
            if tag == "~t" and type(inner) is list:
                return tuple(decode(v) for v in inner)
            if tag == "~s" and type(inner) is list:
                return set(_hashable(decode(v)) for v in inner)
            if tag == "~d" and type(inner) is list:
                return {_hashable(decode(k)): decode(v) for k, v in (_pair(p) for p in inner)}
            if tag == "~b" and type(inner) is str:
                return bytes.fromhex(inner)
            if tag == "~r" and type(inner) is str:
                return inner
            if tag == "~f" and type(inner) is str and inner in _NON_FINITE:
                return _NON_FINITE[inner]
            if tag == "~i" and type(inner) is str:
                return int(inner)  # (a ValueError past Python's 4,300 digits: a damaged value)
        return {k: v if type(v) in _LEAVES else decode(v) for k, v in value.items()}
    return value


def _pair(p: Any) -> tuple[Any, Any]:
    if type(p) is not list or len(p) != 2:
        raise ValueError(f"a dict entry must be a [key, value] pair, got {p!r:.60}")
    return p[0], p[1]


def _hashable(v: Any) -> Any:
    try:
        hash(v)
    except TypeError:
        raise ValueError(f"{type(v).__name__} cannot be a set member or a key") from None
    return v


__all__ = ["encode", "decode"]
