"""What the LLM brain tells the model, and how it reads the answer.

* `vocabulary(world)`: the action vocabulary, generated from the waist's cost table and every
  genesis artifact's `describe()` (methods, parameters, costs), so a new service or a new
  price shows up in the prompt without anyone editing a string.
* `observation(view, ...)`: the agent's observation as JSON: wall time and the time left to
  the oracle's next resolution (SPEC §1), balances, its artifacts and open bids, listings,
  its contracts, a few other agents.
* `parse_answer(text)`: the model's JSON answer, validated by a pydantic discriminated union
  on `"action"` and turned into an engine action; `InvalidAnswer` says what was wrong, in a
  sentence the model is shown on its next turn.

No network and no `openai` here: this module is pure and tested on its own.
"""

from __future__ import annotations

import json
import re
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
from ..events import EVENT_KINDS

if TYPE_CHECKING:
    from ..agent import AgentView

DEFAULT_SYSTEM_PROMPT = (
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
Answer with exactly one JSON object and nothing else. Its "action" field chooses one of:
{"action": "noop"}
{"action": "read", "artifact_id": "<id>"}
{"action": "write", "content": "<text or JSON>", "kind": "data" | "code", "artifact_id": "<optional: an id you own to overwrite, or a new id>"}
{"action": "delete", "artifact_id": "<id you own>"}
{"action": "invoke", "target": "<service or code artifact id>", "method": "<method>", "args": {<named arguments>}}
{"action": "sleep", "seconds": <number>}
{"action": "sleep", "until_event": ["<event kind>", ...], "timeout": <seconds>, "only_mine": true | false}
You may add "reason": "<one short sentence>". Scrip amounts are whole numbers (1, not 1.0).
Code artifacts are Python defining run(...); invoke them with method "run" (price + CPU time)."""


class InvalidAnswer(ValueError):
    """The model's answer was not a valid action; the message is shown to it next turn."""


# -- the vocabulary -------------------------------------------------------------------------------


def _fmt_cost(cost: float) -> str:
    return f"{cost:g}"


def vocabulary(world: Any) -> str:
    """Every action and every agent-callable genesis method, with parameters and costs."""
    waist = world.waist
    costs = waist.costs
    lines = [
        ANSWER_FORMAT,
        "",
        "## Action costs (compute)",
        ", ".join(f"{name} {_fmt_cost(c)}" for name, c in costs.items())
        + "; invoke costs the method's price below.",
        "",
        "## Services (invoke target.method with args; a ? marks an optional argument)",
    ]
    for service_id, service in waist.genesis.items():
        info = service.describe()
        methods = {n: m for n, m in info["methods"].items() if not m.get("operator_only")}
        if not methods:
            continue
        lines.append(f"### {info['id']}: {info['description']}")
        live = getattr(service, "methods", {})
        for name in sorted(methods):
            m = methods[name]
            required = getattr(live.get(name), "required", frozenset(m["params"]))
            params = "; ".join(
                f"{p}{'' if p in required else '?'}: {desc}" for p, desc in m["params"].items()
            )
            lines.append(f"- {service_id}.{name}({params}) cost {_fmt_cost(m['cost'])}: {m['doc']}")
    lines += [
        "",
        "## Events you can sleep until",
        ", ".join(sorted(EVENT_KINDS)),
        "(with only_mine, only events about you wake you, e.g. a transfer you receive)",
    ]
    return "\n".join(lines)


def system_message(system_prompt: str, world: Any) -> str:
    return f"{system_prompt.strip()}\n\n{vocabulary(world)}"


# -- the observation ------------------------------------------------------------------------------


def _clip(value: Any, limit: int) -> Any:
    """A value small enough for a prompt: JSON text longer than `limit` is cut."""
    text = json.dumps(value, default=str, ensure_ascii=False)
    if len(text) <= limit:
        return value
    return text[: limit - 15] + "... (truncated)"


def observation(view: AgentView, world: Any, *, peers: int = 12, max_items: int = 30) -> dict[str, Any]:
    """The agent's situation, time injected, as a JSON-able dict."""
    me = view.id
    obs: dict[str, Any] = {
        "you": me,
        "wall_time": view.wall_time,
        "world_time_s": round(view.now, 3),
        "next_oracle_resolution_in_s": None if view.next_resolution_in is None else round(view.next_resolution_in, 3),
        "scrip": view.scrip,
        "compute": round(view.compute, 3),
        "compute_rate_per_s": view.rate,
        "compute_capacity": view.capacity,
    }
    if world is None:
        return obs
    cfg = world.config
    obs["oracle"] = {
        "min_bid": cfg.oracle.min_bid,
        "slots": cfg.oracle.slots,
        "resolution_interval_s": cfg.oracle.resolution_interval,
    }
    owned = world.artifacts.owned_by(me)
    obs["your_artifacts"] = [
        {"id": a.id, "kind": a.kind, "size": a.size} for a in owned[-max_items:]
    ]
    if len(owned) > max_items:
        obs["your_artifacts_not_shown"] = len(owned) - max_items
    bids = world.oracle.bids
    obs["your_open_bids"] = {b.artifact_id: b.amount for (bidder, _), b in bids.items() if bidder == me}
    listings = view.listings()
    obs["open_listings"] = [
        {"id": x.id, "seller": x.seller, "artifact": x.artifact_id, "kind": x.artifact_kind,
         "price": x.price, **({"only_buyer": x.buyer} if x.buyer else {})}
        for x in listings[:max_items]
    ]
    if len(listings) > max_items:
        obs["open_listings_not_shown"] = len(listings) - max_items
    contracts: dict[str, dict[str, Any]] = {}
    for role in ("debtor", "lender", "holder"):
        for cid, c in view.contracts(role):
            entry = contracts.setdefault(cid, {"id": cid, "roles": []})
            entry["roles"].append(role)
            entry.update(
                {k: c.get(k) for k in ("lender", "debtor", "principal", "rate_per_day", "status", "repaid", "outstanding", "due")}
            )
            if c.get("status") == "active" and "owed" not in entry:
                try:
                    entry["owed"] = view.owed(cid)
                except (KeyError, TypeError, ValueError):  # a contract in an odd state: leave it out
                    pass
    obs["your_contracts"] = list(contracts.values())[:max_items]
    others = [a for a in world.live_ids if a != me][:peers]
    obs["other_agents"] = [{"id": a, "scrip": view.scrip_of(a), "status": view.status_of(a)} for a in others]
    if len(world.live_ids) - 1 > peers:
        obs["other_agents_not_shown"] = len(world.live_ids) - 1 - peers
    return obs


def user_message(obs: dict[str, Any], history: list[dict[str, Any]], error: str | None) -> str:
    parts = ["## Your observation", json.dumps(obs, default=str, ensure_ascii=False)]
    if history:
        parts += ["", "## Your recent turns (oldest first)"]
        parts += [json.dumps(h, default=str, ensure_ascii=False) for h in history]
    if error:
        parts += ["", f"## Your last turn failed\n{error}"]
    parts += ["", "Choose your next action. Answer with one JSON object."]
    return "\n".join(parts)


def describe_result(result: Any, limit: int = 600) -> dict[str, Any]:
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
        return json.loads(text)
    except json.JSONDecodeError as e:
        first_error = e
    decoder = json.JSONDecoder()
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
        return Sleep(seconds=min(float(answer.seconds), max_sleep))
    raise InvalidAnswer(f"unknown answer {answer!r}")  # pragma: no cover - the union is closed


__all__ = [
    "DEFAULT_SYSTEM_PROMPT",
    "InvalidAnswer",
    "describe_result",
    "extract_json",
    "observation",
    "parse_answer",
    "system_message",
    "user_message",
    "vocabulary",
]
