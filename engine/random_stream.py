"""A seeded random stream's position, small enough to keep in every checkpoint.

`random.Random` (Mersenne Twister) keeps 624 words of state, 2.5 KB of pure entropy per
agent: 500 agents checkpointed every 10 world seconds would write 450 MB an hour. But a
stream seeded from a known string is fully described by how many times its state has been
regenerated ("twists", one per 624 words drawn) and its index into the current block. So a
checkpoint keeps `{seed, twists, pos, gauss}` and a crc of the block to check it by; to
find `twists` cheaply at each checkpoint, a `StreamCursor` remembers the block it saw last
time and twists a scratch generator forward from there until the blocks match (an agent
draws far fewer than 624 words between two checkpoints, so that is zero or one twist).
Most checkpoints find the same block as last time, and keep the crc computed then.
A stream that was not seeded from its seed string (reseeded, set by hand) is kept whole.
On CPython the position and block are read in place from the generator's C struct (a
layout checked against `getstate()` at import), which spares building 625 Python ints per
agent per checkpoint; elsewhere `getstate()` it is.

`load` reads hostile input: every figure is bounded and the block is checked against its
crc before it is used.
"""

from __future__ import annotations

import _random
import ctypes
import random
import sys
import zlib
from array import array
from typing import Any

N = 624  # words of Mersenne Twister state
TWIST_BITS = N * 32  # drawing this many bits consumes exactly one block
MAX_CATCH_UP = 64  # twists looked for between two checkpoints before keeping the state whole
MAX_TWISTS = 10**8  # a stream of 3 * 10^10 draws; more is not a journal of this engine

if array("I").itemsize != 4:  # pragma: no cover - every platform CPython supports today
    raise ImportError("engine.random_stream needs 4-byte unsigned ints")


class StreamError(ValueError):
    """A checkpoint's stream does not describe a stream (damaged or forged)."""


def _block(words: tuple[int, ...]) -> bytes:
    return array("I", words[:N]).tobytes()


class StreamCursor:
    """What one writer remembers of one stream between checkpoints (see the module doc)."""

    __slots__ = ("twists", "block", "crc", "whole")

    def __init__(self) -> None:
        self.twists = -1  # not yet located
        self.block = b""
        self.crc = 0  # of `block`
        self.whole = False


_scratch = random.Random()


class _State(ctypes.Structure):
    """A generator's C struct after its object header (CPython's _randommodule.c)."""
    _fields_ = [("index", ctypes.c_int), ("words", ctypes.c_uint32 * N)]


_HEAD = object.__basicsize__  # where a C object's own fields start, after its refcount and type


def _view(rng: random.Random) -> _State:
    """The generator's struct, read and written in place (valid while `rng` lives)."""
    return _State.from_address(id(rng) + _HEAD)


def _readable_in_place() -> bool:
    """Whether this interpreter's generators can be read in place (see `_peek`), as checked
    against `getstate()` at several positions of a probe."""
    if sys.implementation.name != "cpython" or _random.Random.__basicsize__ < _HEAD + ctypes.sizeof(_State):
        return False
    probe = random.Random("engine.random_stream layout probe")
    view = _view(probe)
    for draws in (0, 1, 623, 700):
        for _ in range(draws):
            probe.random()
        words = probe.getstate()[1]
        if view.index != words[N] or bytes(view.words) != _block(words):
            return False
    return True


_IN_PLACE = _readable_in_place()


def _peek(rng: random.Random) -> tuple[int, bytes, float | None]:
    """The stream's index into its block, the block (as `_block` makes it) and its spare
    gauss. Read in place where that can be done: `getstate()` builds a tuple of 625 Python
    ints, 12-20 us, and at every checkpoint of every agent that drew since the last it had
    been the largest part of the capture; reading the struct takes under 1 us."""
    if _IN_PLACE and type(rng) is random.Random:
        view = _view(rng)
        return view.index, bytes(view.words), rng.gauss_next  # type: ignore[attr-defined]
    _, words, gauss = rng.getstate()
    return words[N], _block(words), gauss


def dump(rng: random.Random, seed: str, cursor: StreamCursor) -> dict[str, Any]:
    """The stream's position (or its whole state), as plain JSON values."""
    if cursor.whole:
        return _whole(rng)
    pos, block, gauss = _peek(rng)
    if block == cursor.block:  # the block of last time
        return {"seed": seed, "twists": cursor.twists, "pos": pos, "gauss": gauss, "crc": cursor.crc}
    if cursor.twists < 0:
        cursor.twists, cursor.block = 0, _block(random.Random(seed).getstate()[1])
    ref, k = cursor.block, cursor.twists
    for _ in range(MAX_CATCH_UP + 1):
        if ref == block:
            cursor.twists, cursor.block, cursor.crc = k, block, zlib.crc32(block)
            return {"seed": seed, "twists": k, "pos": pos, "gauss": gauss, "crc": cursor.crc}
        _scratch.setstate((random.Random.VERSION, tuple(array("I", ref)) + (N,), None))
        _scratch.getrandbits(TWIST_BITS)
        ref = _block(_scratch.getstate()[1])
        k += 1
    cursor.whole = True  # not this seed's stream (or far ahead): kept whole from now on
    return _whole(rng)


def _whole(rng: random.Random) -> dict[str, Any]:
    _, words, gauss = rng.getstate()
    return {"state": list(words), "gauss": gauss}


def load(state: Any, memo: dict[tuple[str, int], tuple[bytes, int]] | None = None) -> random.Random:
    """A generator at the dumped position. `memo` (seed, twists) -> (block, its crc) saves
    the twisting when many loads revisit the same positions (a replay seeking)."""
    rng = random.Random()
    restore_into(rng, state, memo)
    return rng


def restore_into(rng: random.Random, state: Any, memo: dict | None = None, seeded: str | None = None) -> None:
    """Move an existing generator (shared by an agent, its view and its brain) to the dumped
    position (see `load`). `seeded`: the seed string `rng` was just seeded with and has not
    drawn from since (a new agent's stream), which spares seeding it again."""
    if not isinstance(state, dict):
        raise StreamError("a random stream must be a table")
    gauss = state.get("gauss")
    if gauss is not None and type(gauss) is not float:
        raise StreamError("a random stream's gauss must be a number or null")
    if "state" in state:
        words = state["state"]
        if (type(words) is not list or len(words) != N + 1
                or not all(type(w) is int and 0 <= w < 2**32 for w in words[:N])
                or type(words[N]) is not int or not 0 <= words[N] <= N):
            raise StreamError("a random stream's state must be 625 words")
        rng.setstate((3, tuple(words), gauss))
        return
    seed, k, pos, crc = state.get("seed"), state.get("twists"), state.get("pos"), state.get("crc")
    if type(seed) is not str or len(seed) > 1000:
        raise StreamError("a random stream's seed must be a string")
    if type(k) is not int or not 0 <= k <= MAX_TWISTS or type(pos) is not int or not 0 <= pos <= N:
        raise StreamError("a random stream's position is out of range")
    view = _view(rng) if _IN_PLACE and type(rng) is random.Random else None
    known = None if memo is None else memo.get((seed, k))
    if known is None:
        if seeded != seed:
            rng.seed(seed)
        for _ in range(k):
            rng.getrandbits(TWIST_BITS)
        block = bytes(view.words) if view is not None else _block(rng.getstate()[1])
        known = (block, zlib.crc32(block))
        if memo is not None:
            memo[(seed, k)] = known
    if known[1] != crc:
        raise StreamError(f"the random stream of {seed!r} does not match its checksum")
    if view is not None:
        # Written in place (the layout `_peek` reads), as `setstate` would, without building
        # 625 ints: the block is this engine's own (twisted here or memoised), never the file's.
        ctypes.memmove(ctypes.addressof(view.words), known[0], 4 * N)
        view.index = pos
        rng.gauss_next = gauss  # type: ignore[attr-defined]
    else:
        rng.setstate((3, tuple(array("I", known[0])) + (pos,), gauss))


__all__ = ["StreamCursor", "StreamError", "dump", "load", "restore_into"]
