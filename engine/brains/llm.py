"""The `llm` brain: any OpenAI-compatible chat endpoint decides the agent's next action.

One turn: build the prompt from the observation (time injected, balances, bids, listings,
contracts, recent results and errors, and the action vocabulary generated from the genesis
artifacts' `describe()`), ask the model over HTTP (never blocking the event loop), charge
the tokens it used (compute, and dollars against the world's LLM budget), and turn its JSON
answer into an engine action.

What can go wrong is a *failed turn*, never an exception: the brain returns `NOOP` with the
thought still charged, and the model is shown the error on its next turn. That covers an
answer that is not JSON or not a valid action, a timeout, a refused or failing request, and
rate limiting (HTTP 429: the brain waits the server's Retry-After in real seconds, then
retries up to `max_retries` times). The agent's task stays runnable while it waits, so a
virtual clock does not jump past a call in flight.

When the world's LLM budget is spent the brain stops thinking: it makes no more calls and
answers a long sleep (until the budget has room again) at no compute cost, while scripted
brains in the same world go on.

The `openai` package is an optional extra (`pip install -e '.[llm]'`): it is imported
lazily, in a worker thread, on the first thought. A world that uses this brain without it
is refused when its config is validated, with a message that says what to install.
"""

from __future__ import annotations

import email.utils
import importlib
import importlib.util
import math
import os
import re
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel
from pydantic import Field, field_validator

from ..actions import NOOP, Action, Sleep
from ..errors import Refusal
from ..events import BrainFailed
from . import register
from .base import Brain, BrainParams
from .llm_prompt import (
    DEFAULT_SYSTEM_PROMPT,
    InvalidAnswer,
    describe_result,
    observation,
    parse_answer,
    system_message,
    user_message,
)

if TYPE_CHECKING:
    from ..agent import AgentView

INSTALL_HINT = "the llm brain needs the openai package: pip install -e '.[llm]' (or pip install openai)"
NO_KEY = "not-needed"  # local servers ignore the key, but the client wants one
RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class LLMUnavailable(RuntimeError):
    """The brain cannot run at all (no openai package, no API key): a configuration problem,
    raised so the agent backs off and, if it persists, is marked crashed with this reason."""


def openai_available() -> bool:
    try:
        return importlib.util.find_spec("openai") is not None
    except (ImportError, ValueError):
        return False


def _import_openai() -> Any:
    try:
        return importlib.import_module("openai")
    except ImportError as e:
        raise LLMUnavailable(f"{INSTALL_HINT} ({e})") from None


def retry_after_seconds(headers: Any) -> float | None:
    """The wait a 429/503 answer asks for: `retry-after-ms`, or `retry-after` in seconds or
    as an HTTP date. None when absent or unreadable."""
    if headers is None:
        return None
    try:
        ms = headers.get("retry-after-ms")
        if ms is not None:
            value = float(ms) / 1000.0
            return value if math.isfinite(value) and value >= 0 else None
        raw = headers.get("retry-after")
    except (TypeError, ValueError):
        return None
    if raw is None:
        return None
    try:
        value = float(raw)
        return value if math.isfinite(value) and value >= 0 else None
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


class CallFailed(Exception):
    """One request gave up (after its retries); `retryable` says whether another try might do."""

    def __init__(self, message: str, retryable: bool, retry_after: float | None = None,
                 again_now: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.again_now = again_now  # the request changed (JSON mode off): not a retry


@register
class LLMBrain(Brain):
    """Asks an OpenAI-compatible chat endpoint for each action; charged by the tokens used."""

    name = "llm"
    summary = "an LLM behind any OpenAI-compatible endpoint chooses each action"
    is_async = True

    class Params(BrainParams):
        think_cost: float = Field(
            1.0, ge=0, allow_inf_nan=False, description="floor: the least compute a thought costs"
        )
        model: str = Field("llama3.2", min_length=1, max_length=200, description="model name the server knows")
        base_url: str = Field(
            "http://127.0.0.1:11434/v1", min_length=1, max_length=500,
            description="OpenAI-compatible API root (Ollama, llama.cpp server, vLLM, ...)",
        )
        api_key_env: str | None = Field(
            None, max_length=100, description="environment variable holding the API key (none: 'not-needed')"
        )
        system_prompt: str = Field(
            DEFAULT_SYSTEM_PROMPT, max_length=20_000,
            description="the agent's persona and goals; answer format and vocabulary are appended",
        )
        temperature: float = Field(0.7, ge=0, le=2, allow_inf_nan=False)
        max_tokens: int = Field(256, ge=1, le=65_536, description="longest answer")
        timeout: float = Field(60.0, gt=0, le=3600, allow_inf_nan=False, description="seconds one request may take")
        max_retries: int = Field(2, ge=0, le=20, description="retries after a timeout, 429, 5xx or lost connection")
        retry_backoff: float = Field(
            0.5, gt=0, le=600, allow_inf_nan=False, description="real seconds before the first retry; doubles"
        )
        max_retry_wait: float = Field(
            30.0, gt=0, le=3600, allow_inf_nan=False, description="cap on any one wait, Retry-After included"
        )
        compute_per_token: float = Field(
            0.002, ge=0, allow_inf_nan=False, description="thought cost = tokens used * this (at least think_cost)"
        )
        dollars_per_1k_tokens: float = Field(
            0.0, ge=0, allow_inf_nan=False, description="charged to the world's llm_budget"
        )
        json_mode: bool = Field(True, description="ask the server for a JSON object (response_format)")
        history: int = Field(6, ge=0, le=100, description="recent turns shown to the model")
        peers: int = Field(12, ge=0, le=1000, description="other agents shown in the observation")
        max_sleep: float = Field(600.0, gt=0, allow_inf_nan=False, description="longest sleep the model may choose")
        budget_sleep: float = Field(
            300.0, gt=0, allow_inf_nan=False, description="world seconds between budget checks once it is spent"
        )

        @field_validator("api_key_env")
        @classmethod
        def _env_name(cls, v: str | None) -> str | None:
            if v is not None and not _ENV_NAME.match(v):
                raise ValueError(f"not an environment variable name: {v!r}")
            return v

        @field_validator("base_url")
        @classmethod
        def _url(cls, v: str) -> str:
            if not v.startswith(("http://", "https://")):
                raise ValueError(f"base_url must start with http:// or https://, got {v!r}")
            return v

    @classmethod
    def validate_params(cls, params: dict[str, Any] | None) -> BrainParams:
        validated = super().validate_params(params)
        if not openai_available():
            raise ValueError(INSTALL_HINT)
        return validated

    def __init__(self, params: BrainParams, rng) -> None:
        super().__init__(params, rng)
        self._client: Any = None
        self._client_token: Any = None
        self._openai: Any = None
        self._system: str | None = None
        self._system_world: Any = None
        self._json_mode = params.json_mode  # switched off if the server refuses it
        self.history: deque[dict[str, Any]] = deque(maxlen=max(1, params.history))
        self._pending: dict[str, Any] | None = None  # the answer whose result comes next turn
        self.error: str | None = None  # shown to the model on the next turn
        self.budget_exhausted = False
        # Counters for reports, the UI and tests.
        self.calls = 0  # HTTP requests made, retries included
        self.turns = 0  # thoughts that reached the model (or tried to)
        self.failed_turns = 0
        self.consecutive_failures = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.dollars = 0.0

    # -- the turn -----------------------------------------------------------------------------
    async def decide(self, view: AgentView) -> Action:
        world = getattr(view, "_world", None)
        self._remember(view)
        if self._budget_spent(world):
            return self._stop_thinking(view, world)
        p = self.params
        self.turns += 1
        messages = self._messages(view, world)
        try:
            response = await self._complete(messages)
        except CallFailed as e:
            self.thought_cost = p.think_cost
            return self._fail(view, world, str(e))
        usage = getattr(response, "usage", None)
        text, finish = self._text(response)
        prompt_tokens, completion_tokens = self._tokens(usage, messages, text)
        tokens = prompt_tokens + completion_tokens
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        self.thought_cost = max(p.think_cost, tokens * p.compute_per_token)
        if not self._pay(world, tokens):
            return self._stop_thinking(view, world, charged=True)
        try:
            action, answer = parse_answer(text, max_sleep=p.max_sleep)
        except InvalidAnswer as e:
            msg = str(e)
            if finish == "length":
                msg += f" (the answer was cut off at max_tokens={p.max_tokens}; answer shorter)"
            return self._fail(view, world, msg, keep_cost=True)
        self._pending = answer
        self.error = None
        self.consecutive_failures = 0
        return action

    def _remember(self, view: AgentView) -> None:
        """Pair the previous turn's answer with the result the world gave it."""
        if self._pending is not None:
            self.history.append(
                {"t": round(view.now, 3), "you_did": self._pending, "result": describe_result(view.last_result)}
            )
            self._pending = None

    def _messages(self, view: AgentView, world: Any) -> list[dict[str, str]]:
        p = self.params
        if self._system is None or self._system_world is not world:
            self._system = system_message(p.system_prompt, world) if world is not None else p.system_prompt
            self._system_world = world
        obs = observation(view, world, peers=p.peers)
        history = list(self.history)[-p.history:] if p.history else []
        return [
            {"role": "system", "content": self._system},
            {"role": "user", "content": user_message(obs, history, self.error)},
        ]

    def _fail(self, view: AgentView, world: Any, error: str, keep_cost: bool = False) -> Action:
        """A failed turn: charged (the thought happened), the error kept for the next turn."""
        if not keep_cost:
            self.thought_cost = self.params.think_cost
        self.failed_turns += 1
        self.consecutive_failures += 1
        self.error = error
        self.history.append({"t": round(view.now, 3), "you_did": "failed turn", "result": {"ok": False, "error": error}})
        if world is not None:
            world.bus.publish(BrainFailed(world.clock.now(), view.id, f"llm: {error}", self.consecutive_failures))
        return NOOP

    # -- the budget -----------------------------------------------------------------------------
    def _budget_spent(self, world: Any) -> bool:
        if world is None or self.params.dollars_per_1k_tokens <= 0:
            return False
        ledger = world.ledger
        spent = ledger.llm_spent >= ledger.llm_budget - 1e-12
        if not spent:
            self.budget_exhausted = False
        return spent

    def _pay(self, world: Any, tokens: int) -> bool:
        dollars = tokens / 1000.0 * self.params.dollars_per_1k_tokens
        if world is None:
            self.dollars += dollars
            return True
        ledger = world.ledger
        try:
            ledger.spend_llm(dollars)
        except Refusal as r:
            if r.code != "budget":
                raise
            # The tokens are used: the budget pays what it has left, and thinking stops.
            left = max(0.0, ledger.llm_budget - ledger.llm_spent)
            if left > 0:
                ledger.spend_llm(left)
            self.dollars += left
            return False
        self.dollars += dollars
        return True

    def _stop_thinking(self, view: AgentView, world: Any, charged: bool = False) -> Action:
        """The budget is spent: no call, no compute; sleep until the budget has room."""
        if not charged:
            self.thought_cost = 0.0
        if not self.budget_exhausted:
            self.budget_exhausted = True
            self.error = None
            if world is not None:
                ledger = world.ledger
                world.bus.publish(BrainFailed(
                    world.clock.now(), view.id,
                    f"llm: LLM budget exhausted ({ledger.llm_spent:.4f} of {ledger.llm_budget:.4f} dollars): "
                    "thinking stopped", 0,
                ))
        ledger = None if world is None else world.ledger

        def budget_has_room(_view: Any) -> bool:
            return ledger is not None and ledger.llm_spent < ledger.llm_budget - 1e-12

        return Sleep(until=budget_has_room, timeout=self.params.budget_sleep)

    # -- the request ----------------------------------------------------------------------------
    async def _ensure_client(self) -> Any:
        """One client per brain and event loop, made in a worker thread (importing openai
        and building its SSL context would otherwise stall every agent)."""
        token = anyio.lowlevel.current_token()
        if self._client is not None and self._client_token is token:
            return self._client
        p = self.params
        if p.api_key_env is None:
            key = NO_KEY
        else:
            key = os.environ.get(p.api_key_env)
            if not key:
                raise LLMUnavailable(f"the llm brain's api_key_env {p.api_key_env!r} is not set in the environment")

        def make() -> Any:
            openai = self._openai or _import_openai()
            client = openai.AsyncOpenAI(base_url=p.base_url, api_key=key, timeout=p.timeout, max_retries=0)
            return openai, client

        self._openai, self._client = await anyio.to_thread.run_sync(make)
        self._client_token = token
        return self._client

    async def _complete(self, messages: list[dict[str, str]]) -> Any:
        """The chat completion, with retries: Retry-After honoured, else exponential backoff
        (real seconds: the network is real even when world time is virtual)."""
        client = await self._ensure_client()
        p = self.params
        attempt = 0
        while True:
            try:
                return await self._once(client, messages)
            except CallFailed as e:
                if e.again_now:
                    continue
                if not e.retryable or attempt >= p.max_retries:
                    tries = f" (after {attempt + 1} attempts)" if attempt else ""
                    raise CallFailed(f"{e}{tries}", False) from None
                wait = e.retry_after if e.retry_after is not None else p.retry_backoff * 2**attempt
                attempt += 1
                await anyio.sleep(min(wait, p.max_retry_wait))

    async def _once(self, client: Any, messages: list[dict[str, str]]) -> Any:
        p = self.params
        openai = self._openai
        kwargs: dict[str, Any] = {
            "model": p.model,
            "messages": messages,
            "temperature": p.temperature,
            "max_tokens": p.max_tokens,
        }
        if self._json_mode:
            kwargs["response_format"] = {"type": "json_object"}
        self.calls += 1
        response = None
        try:
            # The client's timeout bounds each read; this bounds the whole request.
            with anyio.move_on_after(p.timeout):
                response = await client.chat.completions.create(**kwargs)
        except openai.APITimeoutError:
            raise CallFailed(f"the model did not answer within {p.timeout:g}s (timeout)", True) from None
        except openai.APIConnectionError as e:
            raise CallFailed(f"cannot reach {p.base_url}: {e}", True) from None
        except openai.APIStatusError as e:
            status = e.status_code
            retry_after = retry_after_seconds(getattr(e.response, "headers", None))
            body = _body_text(e)
            if self._json_mode and status in (400, 422) and _about_json_mode(body):
                # A server without JSON mode: ask again without it, from now on.
                self._json_mode = False
                raise CallFailed(f"the server does not support JSON mode: {body}", True, again_now=True) from None
            if status == 429:
                msg = "rate limited by the server (HTTP 429)"
            else:
                msg = f"the server refused the request (HTTP {status}): {body}"
            raise CallFailed(msg, status in RETRYABLE_STATUS, retry_after) from None
        except openai.OpenAIError as e:
            raise CallFailed(f"{type(e).__name__}: {e}", False) from None
        except Exception as e:  # a transport problem the SDK did not wrap: still a failed turn
            raise CallFailed(f"the request failed: {type(e).__name__}: {e}", False) from None
        if response is None:
            raise CallFailed(f"the model did not answer within {p.timeout:g}s (timeout)", True)
        if not getattr(response, "choices", None):
            raise CallFailed("the server's answer had no choices", True)
        return response

    @staticmethod
    def _text(response: Any) -> tuple[str | None, str | None]:
        choice = response.choices[0]
        message = getattr(choice, "message", None)
        content = getattr(message, "content", None)
        if isinstance(content, list):  # content parts, as some servers send them
            content = "".join(
                str(part.get("text", "")) if isinstance(part, dict) else str(getattr(part, "text", part))
                for part in content
            )
        elif content is not None and not isinstance(content, str):
            content = str(content)
        return content, getattr(choice, "finish_reason", None)

    @staticmethod
    def _tokens(usage: Any, messages: list[dict[str, str]], text: str | None) -> tuple[int, int]:
        """Tokens used, from the server's `usage`; estimated (4 characters a token) when a
        server does not report it, so thinking is never free by omission."""
        prompt = getattr(usage, "prompt_tokens", None)
        completion = getattr(usage, "completion_tokens", None)
        total = getattr(usage, "total_tokens", None)
        if isinstance(prompt, int) and isinstance(completion, int):
            return max(0, prompt), max(0, completion)
        if isinstance(total, int):
            return max(0, total), 0
        est_prompt = sum(len(m["content"]) for m in messages) // 4 + 1
        return est_prompt, len(text or "") // 4


def _about_json_mode(message: str) -> bool:
    m = message.lower()
    return "response_format" in m or "json_object" in m or "json mode" in m


def _body_text(e: Any, limit: int = 300) -> str:
    body = getattr(e, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        text = err.get("message", str(err)) if isinstance(err, dict) else str(err)
    else:
        text = str(body) if body is not None else str(e)
    return text if len(text) <= limit else text[:limit] + "..."


__all__ = ["LLMBrain", "LLMUnavailable", "openai_available", "retry_after_seconds"]
