"""A dict that also finds its values by what they name (an owner, a party), in its own order.

Brains ask "what do I own", "which loans am I the lender of" at most of their turns, and a
scan of every artifact or contract (a thousand and more in a busy world) was the slowest
part of those turns. An `IndexedDict` keeps, for every index key its values name
(`keys_of(value)`, each named once), the dict keys of those values, and answers
`find(index_key)` in the dict's own order: the order a restored world's dict has too, so a
brain choosing among what it finds chooses alike in a world and in its fork.

Every change of membership goes through the dict's own setting, deleting and popping
(the undo log's as well, engine/undo.py); a value whose index keys change in place is
changed inside `reindex`. Reading (`get`, `in`, iteration) is the plain dict's.
"""

from __future__ import annotations

from typing import Any, Callable, Hashable, Iterable


class IndexedDict(dict):
    __slots__ = ("_keys_of", "_index", "_pos", "_next")

    def __init__(self, keys_of: Callable[[Any], Iterable[Hashable]]) -> None:
        super().__init__()
        self._keys_of = keys_of
        self._index: dict[Hashable, dict[Any, None]] = {}  # index key -> dict keys
        self._pos: dict[Any, int] = {}  # dict key -> its place in the dict's order
        self._next = 0

    def __setitem__(self, key: Any, value: Any) -> None:
        if dict.__contains__(self, key):  # replaced in place: it keeps its place
            self._unindex(key, dict.__getitem__(self, key))
        else:
            self._pos[key] = self._next
            self._next += 1
        dict.__setitem__(self, key, value)
        self._add(key, value)

    def __delitem__(self, key: Any) -> None:
        value = dict.pop(self, key)
        self._unindex(key, value)
        del self._pos[key]

    def pop(self, key: Any, *default: Any) -> Any:
        if dict.__contains__(self, key):
            value = dict.__getitem__(self, key)
            del self[key]
            return value
        if default:
            return default[0]
        raise KeyError(key)

    def clear(self) -> None:
        dict.clear(self)
        self._index.clear()
        self._pos.clear()

    def update(self, other: Any = (), /, **kw: Any) -> None:
        for key, value in dict(other, **kw).items():
            self[key] = value

    def setdefault(self, *args: Any) -> Any:
        raise TypeError("an IndexedDict takes values by setting them")

    def popitem(self) -> Any:
        raise TypeError("an IndexedDict gives values up by key")

    def __ior__(self, other: Any) -> IndexedDict:  # type: ignore[misc]
        self.update(other)
        return self

    def reindex(self, key: Any, change: Callable[[], None]) -> None:
        """Run `change`, which alters what the value of `key` names, keeping the index true."""
        value = dict.__getitem__(self, key)
        self._unindex(key, value)
        try:
            change()
        finally:
            self._add(key, value)

    def find(self, index_key: Hashable) -> list[Any]:
        """The values that name `index_key`, in the dict's order."""
        keys = self._index.get(index_key)
        if not keys:
            return []
        get = dict.__getitem__
        return [get(self, k) for k in sorted(keys, key=self._pos.__getitem__)]

    def consistent(self) -> bool:
        """Does the index say what a scan of the values would, and do the places follow
        the dict's order? (An invariant, checked in one pass: every value is found under
        each key it names, and the index holds no more entries than that.)"""
        index, pos, keys_of = self._index, self._pos, self._keys_of
        if len(pos) != len(self):
            return False
        entries, last = 0, -1
        for key, value in self.items():
            place = pos.get(key)
            if place is None or place <= last:
                return False
            last = place
            for ikey in keys_of(value):
                keys = index.get(ikey)
                if keys is None or key not in keys:
                    return False
                entries += 1
        return entries == sum(map(len, index.values()))

    def _add(self, key: Any, value: Any) -> None:
        index = self._index
        for ikey in self._keys_of(value):
            keys = index.get(ikey)
            if keys is None:
                keys = index[ikey] = {}
            keys[key] = None

    def _unindex(self, key: Any, value: Any) -> None:
        index = self._index
        for ikey in self._keys_of(value):
            keys = index.get(ikey)
            if keys is not None:
                keys.pop(key, None)
                if not keys:
                    del index[ikey]


__all__ = ["IndexedDict"]
