"""The narrow waist's vocabulary: what an agent (or the operator) can ask the world to do.

`noop`, `read`, `write`, `delete`, `invoke` and `sleep`; every service of the world is a
genesis artifact reached through `invoke`. Actions are small slotted objects because a
busy world builds hundreds of thousands of them a second.
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar

from .bounds import shown


class Action:
    __slots__ = ()
    name: ClassVar[str] = "action"

    def describe(self) -> str:
        return self.name


class Noop(Action):
    __slots__ = ()
    name = "noop"


class Read(Action):
    __slots__ = ("artifact_id",)
    name = "read"

    def __init__(self, artifact_id: str) -> None:
        self.artifact_id = artifact_id

    def describe(self) -> str:
        return f"read {self.artifact_id}"


class Write(Action):
    """Create an artifact (artifact_id None or a free id) or overwrite one you own."""

    __slots__ = ("artifact_id", "content", "kind")
    name = "write"

    def __init__(self, content: Any, artifact_id: str | None = None, kind: str = "data") -> None:
        self.content = content
        self.artifact_id = artifact_id
        self.kind = kind

    def describe(self) -> str:
        return f"write {self.artifact_id or 'new ' + self.kind}"


class Delete(Action):
    __slots__ = ("artifact_id",)
    name = "delete"

    def __init__(self, artifact_id: str) -> None:
        self.artifact_id = artifact_id

    def describe(self) -> str:
        return f"delete {self.artifact_id}"


class Invoke(Action):
    __slots__ = ("target", "method", "args")
    name = "invoke"

    def __init__(self, target: str, method: str, args: dict[str, Any] | None = None) -> None:
        self.target = target
        self.method = method
        self.args = {} if args is None else args

    def describe(self) -> str:
        if type(self.target) is str and type(self.method) is str:
            return f"invoke {self.target}.{self.method}"
        return f"invoke {shown(self.target)}.{shown(self.method)}"  # a hostile target, quoted


class Sleep(Action):
    """Sleep for a duration, until an event kind, or until a predicate on the agent's own
    state holds (re-checked when its holdings change). `timeout` bounds the last two.
    With `only_mine`, only events concerning this agent wake it (a transfer *received*);
    otherwise any event of the kinds does (a new listing, an agent frozen)."""

    __slots__ = ("seconds", "until_event", "until", "timeout", "only_mine")
    name = "sleep"

    def __init__(
        self,
        seconds: float | None = None,
        *,
        until_event: tuple[str, ...] | str | None = None,
        until: Callable[[Any], bool] | None = None,
        timeout: float | None = None,
        only_mine: bool = False,
    ) -> None:
        self.seconds = seconds
        self.only_mine = only_mine
        self.until_event = (until_event,) if isinstance(until_event, str) else until_event
        self.until = until
        self.timeout = timeout

    def describe(self) -> str:
        if self.until_event:
            kinds = self.until_event
            if type(kinds) is tuple and all(type(k) is str for k in kinds):
                return "sleep until " + "|".join(kinds)
            return f"sleep until {shown(kinds)}"
        if self.until is not None:
            return "sleep until condition"
        if type(self.seconds) is float or (type(self.seconds) is int and abs(self.seconds) < 10**15):
            return f"sleep {self.seconds:g}s"
        return f"sleep {shown(self.seconds)}"  # a bad duration, described for its refusal


NOOP = Noop()


class Described(Action):
    """An action known only by its description: an agent's last action, as a checkpoint
    brought it back (what it was matters only to the eye once it is done)."""

    __slots__ = ("text",)
    name = "action"

    def __init__(self, text: str) -> None:
        self.text = text

    def describe(self) -> str:
        return self.text


class ScripAtLeast:
    """A sleep's condition "my scrip is at least `amount`", as data, so a checkpoint of a
    sleeping agent keeps it (a lambda could not be written down). Conditions a checkpoint
    can keep have `dump()`; `CONDITIONS` builds them back by name."""

    __slots__ = ("amount",)
    name = "scrip_at_least"

    def __init__(self, amount: int) -> None:
        self.amount = amount

    def __call__(self, view: Any) -> bool:
        return view.scrip >= self.amount

    def dump(self) -> list[Any]:
        return [self.name, self.amount]


CONDITIONS: dict[str, Callable[..., Callable[[Any], bool]]] = {ScripAtLeast.name: ScripAtLeast}


class Result:
    """What an action gave: a value, or a refusal with its reason (and, when the refusal is
    about one argument, that argument's name in `arg`)."""

    __slots__ = ("ok", "value", "error", "code", "arg")

    def __init__(self, ok: bool, value: Any = None, error: str | None = None, code: str | None = None,
                 arg: str | None = None) -> None:
        self.ok = ok
        self.value = value
        self.error = error
        self.code = code
        self.arg = arg

    def __repr__(self) -> str:
        if self.ok:
            return f"Result(ok, {self.value!r})"
        return f"Result(refused: {self.error})"


OK = Result(True)
