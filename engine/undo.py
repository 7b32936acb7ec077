"""The undo log of one genesis call: old values of what it changed, to put back if it fails.

The narrow waist opens the log before a genesis method runs and closes it after. While it
is open, everything that changes the world's economic state (the ledger's balances, rates
and buckets, the artifact store, the services' books, the world's agents and counters)
first records the old value here. A method that refuses, or raises because of an engine
bug, is rolled back from the log: the caller gets a refusal and the world is as it was.
Outside a call (a resolution, a collection at due) the log is closed and costs one test.

Each entry is a function and its arguments; rolling back calls them newest first.
"""

from __future__ import annotations

from typing import Any, Callable

_MISSING = object()


def _put(mapping: dict, key: Any, old: Any) -> None:
    if old is _MISSING:
        mapping.pop(key, None)
    else:
        mapping[key] = old


def _put2(mapping: dict, key: Any, old: Any, key2: Any, old2: Any) -> None:
    mapping[key2] = old2
    mapping[key] = old


def _unpay(ledger: Any, scrip: dict, frm: Any, old: int, to: Any, old2: int, amount: int) -> None:
    """A scrip transfer undone: both balances, and the ledger's running total of scrip moved."""
    scrip[to] = old2
    scrip[frm] = old
    ledger.moved -= amount


def _set_attrs(obj: Any, names: tuple[str, ...], old: tuple[Any, ...]) -> None:
    for name, value in zip(names, old):
        setattr(obj, name, value)


def _refill(container: Any, old: list[Any]) -> None:
    container.clear()
    container.extend(old)


def _redict(mapping: dict, old: dict) -> None:
    mapping.clear()
    mapping.update(old)


class Undo:
    __slots__ = ("on", "log")

    def __init__(self) -> None:
        self.on = False
        self.log: list[tuple[Any, ...]] = []

    # -- recording (each a no-op while closed) --------------------------------------------------
    def item(self, mapping: dict, key: Any) -> None:
        """Before `mapping[key]` is set or deleted."""
        if self.on:
            self.log.append((_put, mapping, key, mapping.get(key, _MISSING)))

    def two(self, mapping: dict, key: Any, key2: Any) -> None:
        """Before two existing keys of one dict change (a transfer's two balances)."""
        if self.on:
            self.log.append((_put2, mapping, key, mapping[key], key2, mapping[key2]))

    def attrs(self, obj: Any, *names: str) -> None:
        """Before any of these attributes of `obj` change."""
        if self.on:
            self.log.append((_set_attrs, obj, names, tuple(getattr(obj, n) for n in names)))

    def items(self, container: Any) -> None:
        """Before a list or deque changes (its items are copied: use for small or rare ones)."""
        if self.on:
            self.log.append((_refill, container, list(container)))

    def mapping(self, mapping: dict) -> None:
        """Before a dict changes in several keys (a contract's terms): a shallow copy."""
        if self.on:
            self.log.append((_redict, mapping, dict(mapping)))

    def call(self, fn: Callable[..., Any], *args: Any) -> None:
        """A change with its own inverse (a heap push undone by removing the entry)."""
        if self.on:
            self.log.append((fn, *args))

    # -- the waist's side -----------------------------------------------------------------------
    def begin(self) -> None:
        self.on = True

    def commit(self) -> None:
        self.on = False
        if self.log:
            self.log.clear()

    def rollback(self) -> int:
        """Put back every recorded change, newest first; returns how many there were."""
        self.on = False
        log = self.log
        n = len(log)
        for entry in reversed(log):
            entry[0](*entry[1:])
        log.clear()
        return n
