"""What the LLM brain tells the model, and how it reads the answer.

A request is two messages, built so a server's prompt cache serves most of it:

* the **system message**, a stable prefix shared by every agent of a model: the world's
  rules, the answer format and the action vocabulary, generated from the waist's cost
  table and every genesis service's `describe()` (methods, parameters, costs), so a new
  service or a new price shows up without anyone editing a string;
* the **user message**, small and bounded: the agent's role (its `system_prompt` param),
  its observation now (time injected, balances, a few of its artifacts, bids, listings,
  contracts and peers), what changed since its last turn, its last few turns and their
  results, and the error of a failed turn.

`action_schema(services)` is the answer's JSON schema, one branch per action and per
agent-callable genesis method, with typed arguments: sent as the request's response format
where the server supports it, so even a small model answers a valid action.
`parse_answer(text)` validates an answer (a pydantic discriminated union on `"action"`)
and turns it into an engine action; `InvalidAnswer` says what was wrong, in a sentence
the model is shown on its next turn. It is the only check when a server ignores the schema.

No network, no `openai` and no world here: this module is pure and tested on its own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from ..actions import NOOP, Action, Delete, Invoke, Read, Sleep, Write
from ..brain_params import DEFAULT_SYSTEM_PROMPT
from ..events import EVENT_KINDS

if TYPE_CHECKING:
    from ..ports import LLMBudget, Observation

# The rules of the world, first in every request of every agent (the cached prefix).
WORLD_RULES = (
    "You are an autonomous agent in a small economy. You hold scrip (whole-number money) and a "
    "compute bucket that refills at your rate; every thought and action costs compute, and "
    "when your compute is below zero you are frozen until it refills. New scrip is minted only "
    "by the oracle: write distinctive artifacts, bid scrip on them, and at each resolution the "
    "top bids are scored and their owners paid. You can also trade on the market, lend and "
    "borrow, and help or pay other agents. Think briefly, act purposefully, and sleep when "
    "there is nothing worth paying compute for."
)

ANSWER_FORMAT = """\
## How to answer
One JSON object, nothing else. "action" is one of:
{"action": "noop"}
{"action": "read", "artifact_id": "<id>"}
{"action": "write", "content": "<text>", "kind": "data" | "code"}
{"action": "delete", "artifact_id": "<id you own>"}
{"action": "invoke", "target": "<service>", "method": "<method>", "args": {<named arguments>}}
{"action": "sleep", "seconds": <number>}
{"action": "sleep", "until_event": ["<event kind>"], "timeout": <seconds>}
Scrip amounts are whole numbers. Artifact ids, amounts and agents come from your observation."""


class InvalidAnswer(ValueError):
    """The model's answer was not a valid action; the message is shown to it next turn."""


# A service as the prompt and the schema see it: its describe(), and the required
# parameters of each method (None where unknown: every parameter counts as required).
Service = tuple[dict[str, Any], dict[str, frozenset[str] | None]]


def _agent_methods(services: Iterable[Service]):
    for info, required in services:
        methods = {n: m for n, m in info["methods"].items() if not m.get("operator_only")}
        if methods:
            yield info, {n: (methods[n], required.get(n)) for n in sorted(methods)}


# -- the vocabulary (the stable prefix) -------------------------------------------------------------


def _fmt_cost(cost: float) -> str:
    return f"{cost:g}"


def _first_sentence(doc: str) -> str:
    end = doc.find(". ")
    return doc if end < 0 else doc[: end + 1]


def vocabulary(costs: dict[str, float], services: Iterable[Service]) -> str:
    """Every action and every agent-callable genesis method, with parameters and costs."""
    lines = [
        ANSWER_FORMAT,
        "",
        "## Action costs (compute)",
        ", ".join(f"{name} {_fmt_cost(c)}" for name, c in costs.items())
        + "; invoke costs the method's price below.",
        "",
        "## Services (invoke target.method with args; a ? marks an optional argument)",
    ]
    for info, methods in _agent_methods(services):
        lines.append(f"### {info['id']}: {info['description']}")
        for name, (m, required) in methods.items():
            req = frozenset(m["params"]) if required is None else required
            # Names only: the answer's schema types each argument, and every token here
            # is read by the model once per server (it is the cached prefix) but still
            # costs a cold start and the context.
            params = ", ".join(f"{p}{'' if p in req else '?'}" for p in m["params"])
            lines.append(f"- {info['id']}.{name}({params}) cost {_fmt_cost(m['cost'])}: {_first_sentence(m['doc'])}")
    lines += [
        "",
        "## Events you can sleep until",
        ", ".join(sorted(EVENT_KINDS)),
        "(with only_mine, only events about you wake you, e.g. a transfer you receive)",
    ]
    return "\n".join(lines)


def system_message(costs: dict[str, float], services: Iterable[Service]) -> str:
    """The stable prefix: the same text for every agent of a world."""
    return f"{WORLD_RULES}\n\n{vocabulary(costs, services)}"


# -- the answer's schema ---------------------------------------------------------------------------


def _arg_schema(description: str) -> dict[str, Any]:
    """A parameter's JSON type, read from the words of its description (the genesis
    methods describe units there: 'whole scrip', 'rate in units/s', 'contract id')."""
    d = description.lower()
    if d.startswith("whole"):
        return {"type": "integer", "minimum": 0}
    if "table" in d:
        return {"type": "object"}
    if any(w in d for w in ("rate", "second", "units", "interest", "capacity", "> 0", ">= 0")):
        return {"type": "number"}
    return {"type": "string", "maxLength": 80}


def _bound_schema(bound: dict[str, Any]) -> dict[str, Any]:
    """A number's JSON type from its declaration: whole scrip is an integer, the rest numbers."""
    if bound["kind"] == "scrip":
        return {"type": "integer", "minimum": 0}
    return {"type": "number"}


def _branch(properties: dict[str, Any], required: Iterable[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": properties,
            "required": list(properties if required is None else required), "additionalProperties": False}


def action_schema(services: Iterable[Service], *, max_sleep: float = 600.0, max_content: int = 280) -> dict[str, Any]:
    """The JSON schema of one valid answer: an action, or an invoke of one real method
    with its arguments typed. Short strings keep a small model's answers short."""
    ident = {"type": "string", "minLength": 1, "maxLength": 80}
    longest = max(1, int(max_sleep))
    branches: list[dict[str, Any]] = [
        _branch({"action": {"const": "noop"}}),
        _branch({"action": {"const": "read"}, "artifact_id": ident}),
        _branch({"action": {"const": "write"},
                 "content": {"type": "string", "minLength": 1, "maxLength": max_content},
                 "kind": {"enum": ["data", "code"]}}),
        _branch({"action": {"const": "delete"}, "artifact_id": ident}),
        _branch({"action": {"const": "sleep"}, "seconds": {"type": "integer", "minimum": 1, "maximum": longest}}),
        _branch({"action": {"const": "sleep"},
                 "until_event": {"type": "array", "items": {"enum": sorted(EVENT_KINDS)}, "minItems": 1, "maxItems": 3},
                 "timeout": {"type": "integer", "minimum": 1, "maximum": longest}}),
    ]
    for info, methods in _agent_methods(services):
        for name, (m, required) in methods.items():
            req = sorted(m["params"]) if required is None else [p for p in m["params"] if p in required]
            bounds = m.get("bounds", {})  # the numbers' declared kinds (engine.bounds)
            args = _branch({p: _bound_schema(bounds[p]) if p in bounds else _arg_schema(desc)
                            for p, desc in m["params"].items()}, req)
            branches.append(_branch({"action": {"const": "invoke"}, "target": {"const": info["id"]},
                                     "method": {"const": name}, "args": args}))
    return {"title": "action", "anyOf": branches}


# -- the observation ------------------------------------------------------------------------------


def _clip(value: Any, limit: int) -> Any:
    """A value small enough for a prompt: JSON text longer than `limit` is cut."""
    text = json.dumps(value, default=str, ensure_ascii=False)
    if len(text) <= limit:
        return value
    return text[: limit - 15] + "... (truncated)"


def observation(view: Observation, access: LLMBudget | None, *, peers: int = 6, max_items: int = 5) -> dict[str, Any]:
    """The agent's situation now, time injected, small and bounded: at most `max_items`
    of each list (the newest), and how many more there are."""
    me = view.id
    obs: dict[str, Any] = {
        "you": me,
        "wall_time": view.wall_time,
        "world_time_s": round(view.now, 1),
        "next_oracle_resolution_in_s": None if view.next_resolution_in is None else round(view.next_resolution_in, 1),
        "scrip": view.scrip,
        "compute": round(view.compute, 2),
        "compute_rate_per_s": view.rate,
        "compute_capacity": view.capacity,
    }
    if access is None:
        return obs
    obs["oracle"] = access.oracle_terms()
    owned = access.my_artifacts()
    obs["your_artifacts"] = [{"id": i, "kind": k, "size": n} for i, k, n in owned[-max_items:]]
    if len(owned) > max_items:
        obs["your_artifacts_not_shown"] = len(owned) - max_items
    obs["your_open_bids"] = access.my_bids()
    listings = view.listings()
    obs["open_listings"] = [
        {"id": x.id, "seller": x.seller, "artifact": x.artifact_id, "kind": x.artifact_kind,
         "price": x.price, **({"only_buyer": x.buyer} if x.buyer else {})}
        for x in listings[-max_items:]
    ]
    if len(listings) > max_items:
        obs["open_listings_not_shown"] = len(listings) - max_items
    contracts: dict[str, dict[str, Any]] = {}
    for role in ("debtor", "lender", "holder"):
        for cid, c in view.contracts(role):
            entry = contracts.setdefault(cid, {"id": cid, "roles": []})
            entry["roles"].append(role)
            entry.update({k: c.get(k) for k in ("lender", "debtor", "principal", "rate_per_day", "status", "due")
                          if c.get(k) is not None})
            if c.get("status") == "active" and "owed" not in entry:
                try:
                    entry["owed"] = view.owed(cid)
                except (KeyError, TypeError, ValueError):  # a contract in an odd state: leave it out
                    pass
    obs["your_contracts"] = list(contracts.values())[-max_items:]
    others = access.peers()
    obs["other_agents"] = {a: view.scrip_of(a) for a in others[:peers]}  # id -> scrip
    if len(others) > peers:
        obs["other_agents_not_shown"] = len(others) - peers
    return obs


# Keys that change every turn: not news.
_ALWAYS_CHANGING = frozenset({"wall_time", "world_time_s", "next_oracle_resolution_in_s"})


def _items(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [json.dumps({k: v}, sort_keys=True, default=str) for k, v in value.items()]
    return [json.dumps(v, sort_keys=True, default=str) for v in value]


def changes(before: dict[str, Any] | None, now: dict[str, Any], *, max_items: int = 5) -> dict[str, Any]:
    """What changed since the last observation: differences of numbers, and what came and
    went in lists and tables (at most `max_items` of each)."""
    if before is None:
        return {}
    out: dict[str, Any] = {}
    for key, value in now.items():
        if key in _ALWAYS_CHANGING or key not in before or before[key] == value:
            continue
        old = before[key]
        if isinstance(value, (int, float)) and isinstance(old, (int, float)) and not isinstance(value, bool):
            out[key] = round(value - old, 3)
        elif isinstance(value, (list, dict)) and isinstance(old, (list, dict)):
            new_items, old_items = _items(value), _items(old)
            came = [json.loads(x) for x in new_items if x not in old_items][:max_items]
            went = [json.loads(x) for x in old_items if x not in new_items][:max_items]
            if came or went:
                out[key] = {k: v for k, v in (("new", came), ("gone", went)) if v}
        else:
            out[key] = value
    return out


# -- the observation as the model reads it: compact lines ----------------------------------------
#
# A turn's new prompt tokens are what the server evaluates (the shared prefix is cached),
# and a small model's tokenizer spends a token on every quote, brace and digit: JSON with
# its keys repeated per item cost ~360 tokens for an ordinary observation, these lines
# ~170. Every fact is still there: one line per key, lists as `id: key value, ...` items.


def _scalar(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return json.dumps(v)
    if isinstance(v, float):
        return f"{v:g}" if abs(v) < 1e15 else json.dumps(v)
    if isinstance(v, (int, str)):
        return str(v)
    return json.dumps(v, default=str, ensure_ascii=False, separators=(",", ":"))


# Labels that say a number's unit where the key's name abbreviates it.
_LABELS = {
    "world_time_s": "world time (s)",
    "next_oracle_resolution_in_s": "next oracle resolution in (s)",
    "compute_rate_per_s": "compute rate (per s)",
    "other_agents": "other agents' scrip",
}


def _label(key: str) -> str:
    return _LABELS.get(key) or key.replace("_", " ")


def _render_item(v: Any) -> str:
    if isinstance(v, dict):
        head = f"{_scalar(v['id'])}: " if "id" in v else ""
        rest = ", ".join(f"{_label(k)} {_render_value(x)}" for k, x in v.items() if k != "id")
        return head + rest if rest else head.rstrip(": ")
    return _render_value(v)


def _render_value(v: Any) -> str:
    if isinstance(v, dict):
        return ", ".join(f"{k} {_render_value(x)}" for k, x in v.items()) if v else "none"
    if isinstance(v, (list, tuple)):
        return "; ".join(_render_item(x) for x in v) if v else "none"
    return _scalar(v)


_NOT_SHOWN = "_not_shown"


def render_observation(obs: dict[str, Any]) -> str:
    """One line per fact: `label: value`; lists of records as `id: key value, ...; ...`,
    and how many more there are that were left out."""
    lines = []
    for key, value in obs.items():
        if key.endswith(_NOT_SHOWN):
            continue
        line = f"{_label(key)}: {_render_value(value)}"
        more = obs.get(key + _NOT_SHOWN)
        if more:
            line += f" (+{more} more)"
        lines.append(line)
    return "\n".join(lines)


def render_changes(changed: dict[str, Any]) -> str:
    parts = []
    for key, value in changed.items():
        if isinstance(value, dict) and set(value) <= {"new", "gone"}:
            value = " ".join(f"{k} {_render_value(v)}" for k, v in value.items())
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            value = f"{value:+g}"
        else:
            value = _render_value(value)
        parts.append(f"{_label(key)} {value}")
    return "; ".join(parts)


def _compact(v: Any) -> str:
    return json.dumps(v, default=str, ensure_ascii=False, separators=(",", ":"))


def render_action(did: Any, content_limit: int = 60) -> str:
    """An answer in a few tokens: `invoke oracle.bid {"artifact":"a-1","amount":2}`,
    `sleep seconds 15`, `write kind data, content "the first 60 characters..."`."""
    if not isinstance(did, dict) or not isinstance(did.get("action"), str):
        return did if isinstance(did, str) else _compact(did)
    rest = {k: v for k, v in did.items() if k != "action"}
    if did["action"] == "invoke":
        target, method, args = rest.pop("target", "?"), rest.pop("method", "?"), rest.pop("args", {})
        head = f"invoke {target}.{method} {_compact(args)}"
    else:
        head = did["action"]
    content = rest.get("content")
    if isinstance(content, str) and len(content) > content_limit:
        rest["content"] = content[:content_limit] + "..."
    fields = ", ".join(f"{k} {_compact(v) if isinstance(v, str) and k == 'content' else _render_value(v)}"
                       for k, v in rest.items())
    return f"{head} {fields}" if fields else head


def render_turn(turn: dict[str, Any]) -> str:
    """`t 12.5: what it did -> ok value` (or `-> refused (code): reason`)."""
    did_text = render_action(turn.get("you_did"))
    result = turn.get("result") or {}
    if result.get("ok") is True:
        value = result.get("value")
        outcome = "ok" if value is None else f"ok {_scalar(value)}"
    elif result.get("ok") is False:
        code = result.get("code")
        outcome = f"refused ({code}): {result.get('error')}" if code else f"failed: {result.get('error')}"
    else:
        outcome = "no result yet"
    return f"t {_scalar(turn.get('t'))}: {did_text} -> {outcome}"


def user_message(role: str, obs: dict[str, Any], changed: dict[str, Any] | None,
                 history: list[dict[str, Any]], error: str | None) -> str:
    parts = ["## Your role", role.strip(), "## Your observation", render_observation(obs)]
    if changed:
        parts += ["## Changed since your last turn", render_changes(changed)]
    if history:
        parts += ["## Your recent turns (oldest first)"]
        parts += [render_turn(h) for h in history]
    if error:
        parts += [f"## Your last turn failed\n{error}"]
    parts += ["Answer with one JSON action."]
    return "\n".join(parts)


def observation_in(user: str) -> dict[str, str]:
    """The observation a user message carries, as label -> the line's text (for tests and
    tools)."""
    lines = user.split("\n")
    out: dict[str, str] = {}
    for line in lines[lines.index("## Your observation") + 1:]:
        if line.startswith("## ") or ": " not in line:
            break
        label, _, text = line.partition(": ")
        out[label] = text
    return out


def describe_result(result: Any, limit: int = 300) -> dict[str, Any]:
    if result is None:
        return {"ok": None}
    if result.ok:
        return {"ok": True, "value": _clip(result.value, limit)}
    return {"ok": False, "error": result.error, "code": result.code}


# -- the answer -----------------------------------------------------------------------------------


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(None, max_length=2000)


class NoopAnswer(_Answer):
    action: Literal["noop"]


class ReadAnswer(_Answer):
    action: Literal["read"]
    artifact_id: str = Field(min_length=1)


class WriteAnswer(_Answer):
    action: Literal["write"]
    content: Any
    kind: Literal["data", "code"] = "data"
    artifact_id: str | None = None

    @field_validator("content")
    @classmethod
    def _some_content(cls, v: Any) -> Any:
        if v is None:
            raise ValueError("content is required")
        return v


class DeleteAnswer(_Answer):
    action: Literal["delete"]
    artifact_id: str = Field(min_length=1)


class InvokeAnswer(_Answer):
    action: Literal["invoke"]
    target: str = Field(min_length=1)
    method: str = Field(min_length=1)
    args: dict[str, Any] = Field(default_factory=dict)


class SleepAnswer(_Answer):
    action: Literal["sleep"]
    seconds: float | None = Field(None, ge=0, allow_inf_nan=False)
    until_event: list[str] | None = None
    timeout: float | None = Field(None, gt=0, allow_inf_nan=False)
    only_mine: bool = False

    @field_validator("until_event", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("until_event")
    @classmethod
    def _known(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            unknown = [k for k in v if k not in EVENT_KINDS]
            if unknown:
                raise ValueError(f"unknown event kinds {unknown}; known: {', '.join(sorted(EVENT_KINDS))}")
            if not v:
                return None
        return v

    @model_validator(mode="after")
    def _what(self) -> SleepAnswer:
        if self.seconds is None and not self.until_event:
            raise ValueError("give seconds, or until_event (with a timeout)")
        return self


Answer = Annotated[
    NoopAnswer | ReadAnswer | WriteAnswer | DeleteAnswer | InvokeAnswer | SleepAnswer,
    Field(discriminator="action"),
]
_ANSWER = TypeAdapter(Answer)

_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)


def extract_json(text: str | None) -> Any:
    """The JSON object in a model's answer: the whole text, or the first object in it
    (models wrap answers in code fences, prose or <think> blocks)."""
    if text is None or not text.strip():
        raise InvalidAnswer("your answer was empty; answer with one JSON object")
    text = _THINK.sub("", text).strip()
    try:
        # strict=False: a raw newline or tab inside a string (a small model writes them,
        # even under the schema's grammar) is read, not refused; the values are checked after.
        return json.loads(text, strict=False)
    except json.JSONDecodeError as e:
        first_error = e
    decoder = json.JSONDecoder(strict=False)
    start = text.find("{")
    while start != -1:
        try:
            value, _ = decoder.raw_decode(text, start)
            return value
        except json.JSONDecodeError:
            start = text.find("{", start + 1)
    snippet = text if len(text) <= 200 else text[:200] + "..."
    raise InvalidAnswer(f"your answer was not valid JSON ({first_error.msg} at char {first_error.pos}): {snippet!r}")


def _describe_errors(e: ValidationError) -> str:
    parts = []
    for err in e.errors()[:6]:
        loc = ".".join(str(x) for x in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def parse_answer(text: str | None, *, max_sleep: float = 600.0) -> tuple[Action, dict[str, Any]]:
    """The engine action a model's answer asks for, and the answer as a plain dict.
    Raises `InvalidAnswer` with a sentence for the model."""
    data = extract_json(text)
    if not isinstance(data, dict):
        raise InvalidAnswer(f"answer one JSON object with an \"action\" field, not {type(data).__name__}")
    if "action" not in data:
        raise InvalidAnswer(
            "your JSON has no \"action\" field; it must be one of noop, read, write, delete, invoke, sleep"
        )
    try:
        answer = _ANSWER.validate_python(data)
    except ValidationError as e:
        raise InvalidAnswer(f"invalid action: {_describe_errors(e)}") from None
    return to_action(answer, max_sleep=max_sleep), answer.model_dump(exclude_none=True, exclude={"reason"})


def to_action(answer: Any, *, max_sleep: float = 600.0) -> Action:
    if isinstance(answer, NoopAnswer):
        return NOOP
    if isinstance(answer, ReadAnswer):
        return Read(answer.artifact_id)
    if isinstance(answer, WriteAnswer):
        return Write(answer.content, answer.artifact_id, answer.kind)
    if isinstance(answer, DeleteAnswer):
        return Delete(answer.artifact_id)
    if isinstance(answer, InvokeAnswer):
        return Invoke(answer.target, answer.method, dict(answer.args))
    if isinstance(answer, SleepAnswer):
        if answer.until_event:
            timeout = min(answer.timeout if answer.timeout is not None else max_sleep, max_sleep)
            return Sleep(until_event=tuple(answer.until_event), timeout=timeout, only_mine=answer.only_mine)
        return Sleep(seconds=min(float(answer.seconds or 0.0), max_sleep))  # (never None here: _what)
    raise InvalidAnswer(f"unknown answer {answer!r}")  # pragma: no cover - the union is closed


__all__ = [
    "DEFAULT_SYSTEM_PROMPT",
    "WORLD_RULES",
    "InvalidAnswer",
    "action_schema",
    "changes",
    "describe_result",
    "extract_json",
    "observation",
    "observation_in",
    "parse_answer",
    "render_action",
    "render_changes",
    "render_observation",
    "render_turn",
    "system_message",
    "user_message",
    "vocabulary",
]
