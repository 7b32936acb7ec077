"""The `llm` brain: a language model behind any OpenAI-compatible chat endpoint decides the
agent's next action.

One turn: build the request (the stable prefix every agent of the world shares, then the
agent's small observation: `llm_prompt`), wait for a place at the endpoint's gate (a fair
queue: `llm_gate`), ask the model over HTTP (never blocking the event loop), charge the
tokens it used (compute, and dollars against the world's LLM budget), and turn its answer
into an engine action. The answer is constrained by the action's JSON schema where the
server supports it (`response_format` as a JSON schema for OpenAI, vLLM and llama.cpp's
native server; `{"type": "json_object", "schema": ...}` for llama-cpp-python; Ollama's
`format`), falling back step by step when a server refuses, down to parsing plain text.

With `local = true` the brain starts (once per process) the llama.cpp server on a free
loopback port serving a GGUF file (`engine.local_llm`), and speaks to it.

Every request and its answer are journalled (`engine.llm_record`); a world given a
recording (`--llm-replay FILE.db`) answers each request from it and calls no model. Under
virtual time the scheduler lands async work in the order it started, once none is in
flight, so a recorded world and its replay run the same: same prompts, same answers,
same report.

What can go wrong is a *failed turn*, never an exception: the brain returns `NOOP` with the
thought still charged, and the model is shown the error on its next turn. That covers an
answer that is not JSON or not a valid action, a timeout, a refused or failing request,
rate limiting (HTTP 429: the brain waits the server's Retry-After in real seconds, then
retries up to `max_retries` times) and, in a replay, a request the recording lacks. The
agent's task stays runnable while it waits, so a virtual clock does not jump past a call
in flight.

When the world's LLM budget is spent the brain stops thinking: it makes no more calls and
answers a long sleep (until the budget has room again) at no compute cost, while scripted
brains in the same world go on.

A brain never holds the world: all it uses beyond the observation comes through the
view's narrow `llm` capability (`engine.llm_access.LLMAccess`).

The `openai` package is an optional extra (`pip install -e '.[llm]'`): it is imported
lazily, in a worker thread, on the first thought. A world that uses this brain without it
is refused when its config is validated, with a message that says what to install.
"""

from __future__ import annotations

import email.utils
import hashlib
import importlib
import json
import math
import os
import random
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel

from ..actions import NOOP, Action, Sleep
from ..llm_record import RecordedAnswer, request_key, row_for
from ..brain_params import OPENAI_HINT, BrainParams, LLMParams, openai_available, require_openai
from .base import Brain
from .llm_gate import EndpointGate, gate_for
from .llm_prompt import (
    InvalidAnswer,
    action_schema,
    changes,
    describe_result,
    observation,
    parse_answer,
    system_message,
    user_message,
)

if TYPE_CHECKING:
    from ..ports import LLMBudget, Observation

INSTALL_HINT = OPENAI_HINT
NO_KEY = "not-needed"  # local servers ignore the key, but the client wants one
RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
# How an answer is constrained, strongest first; a server that refuses one gets the next.
# json_schema: OpenAI, vLLM, llama.cpp's llama-server, recent Ollama. llama_cpp: the
# llama-cpp-python server's {"type": "json_object", "schema": ...}. ollama: Ollama's `format`.
FORMAT_CHAIN = ("json_schema", "llama_cpp", "json_object", None)


class LLMUnavailable(RuntimeError):
    """The brain cannot run at all (no openai package, no API key, no local model): a
    configuration problem, raised so the agent backs off and, if it persists, is marked
    crashed with this reason."""


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
        self.again_now = again_now  # the request changed (a weaker answer format): not a retry


class LLMBrain(Brain[LLMParams]):
    """Asks an OpenAI-compatible chat endpoint for each action; charged by the tokens used."""

    name = "llm"
    summary = "an LLM behind any OpenAI-compatible endpoint chooses each action"
    is_async = True
    # Its usage, kept by checkpoints (the conversation is rebuilt from what it observes).
    memory = ("calls", "turns", "answers", "answered", "failed_turns", "replay_missing", "consecutive_failures",
              "prompt_tokens", "cached_prompt_tokens", "completion_tokens", "dollars", "budget_exhausted")

    Params = LLMParams

    @classmethod
    def validate_params(cls, params: dict[str, Any] | None) -> BrainParams:
        validated = super().validate_params(params)
        require_openai()
        return validated

    def __init__(self, params: LLMParams, rng: random.Random) -> None:
        super().__init__(params, rng)
        p = params
        self._client: Any = None
        self._client_token: Any = None
        self._openai: Any = None
        self._endpoint = p.base_url
        self._model = p.model
        self._prefix: str | None = None
        self._schema: dict[str, Any] | None = None
        if not p.json_mode:
            self._format: str | None = None
        elif p.answer_format == "auto":
            self._format = "llama_cpp" if p.local else "json_schema"
        else:
            self._format = p.answer_format
        self.history: deque[dict[str, Any]] = deque(maxlen=max(1, p.history))
        self._pending: dict[str, Any] | None = None  # the answer whose result comes next turn
        self._last_obs: dict[str, Any] | None = None
        self.error: str | None = None  # shown to the model on the next turn
        self.budget_exhausted = False
        # Where the current thought is, for the agent's detail.
        self._gate: EndpointGate | None = None
        self._agent_id = ""
        self._asked_at: float | None = None
        # Counters for reports, the UI and tests.
        self.calls = 0  # HTTP requests made, retries included
        self.turns = 0  # thoughts that reached the model (or tried to)
        self.answers = 0  # turns the model answered (tokens known), valid or not
        self.answered = 0  # turns whose answer was a valid action
        self.failed_turns = 0
        self.replay_missing = 0  # replayed turns the recording had no answer for
        self.consecutive_failures = 0
        self.prompt_tokens = 0
        self.cached_prompt_tokens = 0  # of prompt_tokens, served by the server's prompt cache
        self.completion_tokens = 0
        self.last_tokens: tuple[int, int, int] | None = None  # (prompt, cached, completion)
        self.dollars = 0.0
        # Real seconds, summed over requests (not in the report: a replay must match it).
        self.timing = {"queued_s": 0.0, "request_s": 0.0, "requests_timed": 0, "server_total_s": 0.0,
                       "prompt_eval_s": 0.0, "prompt_eval_tokens": 0, "generate_s": 0.0, "generated_tokens": 0}

    # -- the turn -----------------------------------------------------------------------------
    # An async brain (is_async): the agent awaits the action its decide returns.
    async def decide(self, view: Observation) -> Action:  # type: ignore[override]
        access = view.llm
        self._agent_id = view.id
        self._remember(view)
        if self._budget_spent(access):
            return self._stop_thinking(access)
        p = self.params
        self.turns += 1
        messages = self._messages(view, access)
        asked = {"model": self._request_model(), "messages": messages,
                 "temperature": p.temperature, "max_tokens": p.max_tokens}
        digest = hashlib.sha256(json.dumps(asked, sort_keys=True, default=str).encode()).hexdigest()
        key = request_key(asked, access.occurrence(digest))
        # Under virtual time the scheduler lands answers in the order the requests were
        # made, once none is in flight: a replay (answers at once) runs as the recording did.
        got = await self._answer(access, asked, key, view)
        if got is None:
            self.replay_missing += 1
            source = access.replay.source if access.replay is not None else "the recording"
            return self._fail(view, access, f"no recorded answer for this request in {source} "
                              "(the replayed world asked what the recording never saw)")
        if got.error is not None:
            return self._fail(view, access, got.error)
        self.answers += 1
        self.prompt_tokens += got.prompt_tokens
        self.cached_prompt_tokens += got.cached_tokens
        self.completion_tokens += got.completion_tokens
        self.last_tokens = (got.prompt_tokens, got.cached_tokens, got.completion_tokens)
        tokens = got.prompt_tokens + got.completion_tokens
        self.thought_cost = max(p.think_cost, tokens * p.compute_per_token)
        if not self._pay(access, tokens):
            return self._stop_thinking(access, charged=True)
        try:
            action, answer = parse_answer(got.answer, max_sleep=p.max_sleep)
        except InvalidAnswer as e:
            msg = str(e)
            if got.finish == "length":
                msg += f" (the answer was cut off at max_tokens={p.max_tokens}; answer shorter)"
            return self._fail(view, access, msg, keep_cost=True)
        self.answered += 1
        self._pending = answer
        self.error = None
        self.consecutive_failures = 0
        return action

    def _request_model(self) -> str:
        from ..local_llm import LOCAL_MODEL_NAME

        return LOCAL_MODEL_NAME if self.params.local else self.params.model

    async def _answer(self, access: LLMBudget, asked: dict[str, Any], key: str, view: Observation) -> RecordedAnswer | None:
        """The answer from the recording being replayed (None when it has none), or from
        the model, journalled."""
        replay = access.replay
        if replay is not None:
            return replay.answer(key)
        got = await self._ask(asked, view.id)
        params = {"temperature": asked["temperature"], "max_tokens": asked["max_tokens"], "format": self._format or "text"}
        access.record(row_for(key, view.id, view.now, asked["model"], params, got))
        return got

    def _remember(self, view: Observation) -> None:
        """Pair the previous turn's answer with the result the world gave it."""
        if self._pending is not None:
            self.history.append(
                {"t": round(view.now, 1), "you_did": self._pending, "result": describe_result(view.last_result)}
            )
            self._pending = None

    def _messages(self, view: Observation, access: LLMBudget) -> list[dict[str, str]]:
        p = self.params
        if self._prefix is None:
            services = access.services()
            self._prefix = system_message(access.action_costs(), services)
            self._schema = action_schema(services, max_sleep=p.max_sleep)
        obs = observation(view, access, peers=p.peers, max_items=p.max_items)
        changed = changes(self._last_obs, obs, max_items=p.max_items)
        self._last_obs = obs
        history = list(self.history)[-p.history:] if p.history else []
        return [
            {"role": "system", "content": self._prefix},
            {"role": "user", "content": user_message(p.system_prompt, obs, changed, history, self.error)},
        ]

    def _fail(self, view: Observation, access: LLMBudget, error: str, keep_cost: bool = False) -> Action:
        """A failed turn: charged (the thought happened), the error kept for the next turn."""
        if not keep_cost:
            self.thought_cost = self.params.think_cost
        self.failed_turns += 1
        self.consecutive_failures += 1
        self.error = error
        self.history.append({"t": round(view.now, 1), "you_did": "failed turn", "result": {"ok": False, "error": error}})
        access.report_failure(f"llm: {error}", self.consecutive_failures)
        return NOOP

    # -- the budget -----------------------------------------------------------------------------
    def _budget_spent(self, access: LLMBudget) -> bool:
        if self.params.dollars_per_1k_tokens <= 0:
            return False
        spent = access.exhausted()
        if not spent:
            self.budget_exhausted = False
        return spent

    def _pay(self, access: LLMBudget, tokens: int) -> bool:
        """Charge the budget; False when it could not pay in full (thinking stops)."""
        dollars = tokens / 1000.0 * self.params.dollars_per_1k_tokens
        paid = access.spend(dollars)
        self.dollars += paid
        return paid >= dollars

    def _stop_thinking(self, access: LLMBudget, charged: bool = False) -> Action:
        """The budget is spent: no call, no compute; sleep until the budget has room."""
        if not charged:
            self.thought_cost = 0.0
        if not self.budget_exhausted:
            self.budget_exhausted = True
            self.error = None
            access.report_failure(
                f"llm: LLM budget exhausted ({access.spent:.4f} of {access.budget:.4f} dollars): thinking stopped", 0)

        def budget_has_room(_view: Any) -> bool:
            return not access.exhausted()

        return Sleep(until=budget_has_room, timeout=self.params.budget_sleep)

    # -- for reports and the UI -----------------------------------------------------------------
    def usage(self) -> dict[str, Any]:
        """Turns, tokens and dollars so far (the report and the agent's detail)."""
        n = max(1, self.answers)
        return {
            "turns": self.turns,
            "answers": self.answers,
            "valid_answers": self.answered,
            "failed_turns": self.failed_turns,
            "replay_missing": self.replay_missing,
            "prompt_tokens": self.prompt_tokens,
            "cached_prompt_tokens": self.cached_prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "dollars": round(self.dollars, 9),
            "per_answer": {  # the mean over the turns the model answered
                "prompt_tokens": round(self.prompt_tokens / n, 1),
                "new_prompt_tokens": round((self.prompt_tokens - self.cached_prompt_tokens) / n, 1),
                "completion_tokens": round(self.completion_tokens / n, 1),
            },
        }

    def activity(self) -> str:
        """What the thought in progress waits for: its place at the endpoint, or the model."""
        gate = self._gate
        if gate is not None:
            place = gate.place(self._agent_id)
            if place is not None:
                return f"queued {place} of {len(gate.queue)} for {gate.endpoint} ({gate.in_flight} in flight)"
        if self._asked_at is not None:
            return f"asking {self._request_model()} ({time.monotonic() - self._asked_at:.0f}s)"
        return ""

    # -- the request ----------------------------------------------------------------------------
    async def _ensure_client(self) -> Any:
        """One client per brain and event loop, made in a worker thread (importing openai
        and building its SSL context would otherwise stall every agent). A local model's
        server is started here on first use (also in a worker thread)."""
        token = anyio.lowlevel.current_token()
        if self._client is not None and self._client_token is token:
            return self._client
        p = self.params
        if p.local:
            from ..local_llm import LocalModelError, local_server

            try:
                server = await anyio.to_thread.run_sync(local_server, p.local_model)
            except LocalModelError as e:
                raise LLMUnavailable(str(e)) from None
            self._endpoint = server.url
            key = NO_KEY
        elif p.api_key_env is None:
            key = NO_KEY
        else:
            from_env = os.environ.get(p.api_key_env)
            if not from_env:
                raise LLMUnavailable(f"the llm brain's api_key_env {p.api_key_env!r} is not set in the environment")
            key = from_env
        endpoint = self._endpoint

        def make() -> Any:
            openai = self._openai or _import_openai()
            client = openai.AsyncOpenAI(base_url=endpoint, api_key=key, timeout=p.timeout, max_retries=0)
            return openai, client

        self._openai, self._client = await anyio.to_thread.run_sync(make)
        self._client_token = token
        return self._client

    async def _ask(self, asked: dict[str, Any], who: str) -> RecordedAnswer:
        """The model's answer, or the error the request ended in (after its retries)."""
        try:
            response = await self._complete(asked, who)
        except CallFailed as e:
            return RecordedAnswer(None, None, 0, 0, 0, str(e))
        text, finish = self._text(response)
        usage = getattr(response, "usage", None)
        prompt, completion, cached = self._tokens(usage, asked["messages"], text)
        self._server_timings(response, usage)
        return RecordedAnswer(text or "", finish, prompt, completion, cached, None)

    async def _complete(self, asked: dict[str, Any], who: str) -> Any:
        """The chat completion, with retries: Retry-After honoured, else exponential backoff
        (real seconds: the network is real even when world time is virtual). Each try
        takes its turn at the endpoint's gate."""
        client = await self._ensure_client()
        p = self.params
        gate = gate_for(self._endpoint, 1 if p.local else p.max_in_flight)
        attempt = 0
        timing = self.timing
        while True:
            self._gate = gate
            queued = time.monotonic()
            ticket = await gate.enter(who)
            self._asked_at = asked_at = time.monotonic()
            timing["queued_s"] += asked_at - queued
            try:
                return await self._once(client, asked)
            except CallFailed as e:
                if e.again_now:
                    continue
                if not e.retryable or attempt >= p.max_retries:
                    tries = f" (after {attempt + 1} attempts)" if attempt else ""
                    raise CallFailed(f"{e}{tries}", False) from None
                wait = e.retry_after if e.retry_after is not None else p.retry_backoff * 2**attempt
                attempt += 1
            finally:
                gate.leave(ticket)
                timing["request_s"] += time.monotonic() - asked_at
                self._gate = None
                self._asked_at = None
            await anyio.sleep(min(wait, p.max_retry_wait))

    def _format_fields(self) -> dict[str, Any]:
        f = self._format
        schema = self._schema
        if f == "json_schema":
            return {"response_format": {"type": "json_schema", "json_schema": {"name": "action", "schema": schema}}}
        if f == "llama_cpp":
            return {"response_format": {"type": "json_object", "schema": schema}}
        if f == "ollama":
            return {"extra_body": {"format": schema}}
        if f == "json_object":
            return {"response_format": {"type": "json_object"}}
        return {}

    def _weaker_format(self) -> str | None:
        f = self._format
        if f == "ollama":
            return "json_object"
        return FORMAT_CHAIN[FORMAT_CHAIN.index(f) + 1] if f in FORMAT_CHAIN and f is not None else None

    async def _once(self, client: Any, asked: dict[str, Any]) -> Any:
        p = self.params
        openai = self._openai
        kwargs: dict[str, Any] = {**asked, **self._format_fields()}
        self.calls += 1
        response = None
        try:
            # The client's timeout bounds each read; this bounds the whole request.
            with anyio.move_on_after(p.timeout):
                response = await client.chat.completions.create(**kwargs)
        except openai.APITimeoutError:
            raise CallFailed(f"the model did not answer within {p.timeout:g}s (timeout)", True) from None
        except openai.APIConnectionError as e:
            raise CallFailed(f"cannot reach {self._endpoint}: {e}", True) from None
        except openai.APIStatusError as e:
            status = e.status_code
            retry_after = retry_after_seconds(getattr(e.response, "headers", None))
            body = _body_text(e)
            # llama-cpp-python answers an unknown response_format type with a 500.
            if self._format is not None and status in (400, 422, 500) and _about_json_mode(body):
                # The server does not take this answer format: ask again with a weaker one.
                was = self._format
                self._format = self._weaker_format()
                raise CallFailed(f"the server does not support the answer format {was}: {body}", True,
                                 again_now=True) from None
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
        finish = getattr(choice, "finish_reason", None)
        return content, finish if isinstance(finish, str) else None

    def _server_timings(self, response: Any, usage: Any) -> None:
        """Add where the server says the request's time went: llama.cpp's `timings`
        (top level from llama-server, in the usage from `engine.local_llm_server`)."""
        t = getattr(usage, "timings", None) or getattr(response, "timings", None)
        if not isinstance(t, dict):
            return
        try:
            prompt_ms, predicted_ms = float(t["prompt_ms"]), float(t["predicted_ms"])
            prompt_n, predicted_n = int(t["prompt_n"]), int(t["predicted_n"])
            total_ms = float(t.get("total_ms", prompt_ms + predicted_ms))
        except (KeyError, TypeError, ValueError):
            return  # a server's own figures, not trusted to have a shape: left out
        if not all(math.isfinite(x) and x >= 0 for x in (prompt_ms, predicted_ms, total_ms)):
            return
        timing = self.timing
        timing["requests_timed"] += 1
        timing["server_total_s"] += total_ms / 1000.0
        timing["prompt_eval_s"] += prompt_ms / 1000.0
        timing["prompt_eval_tokens"] += max(0, prompt_n)
        timing["generate_s"] += predicted_ms / 1000.0
        timing["generated_tokens"] += max(0, predicted_n)

    @staticmethod
    def _tokens(usage: Any, messages: list[dict[str, str]], text: str | None) -> tuple[int, int, int]:
        """(prompt, completion, cached prompt) tokens, from the server's `usage`; estimated
        (4 characters a token) when a server does not report it, so thinking is never free
        by omission. Cached tokens come from `usage.prompt_tokens_details.cached_tokens`."""
        prompt = getattr(usage, "prompt_tokens", None)
        completion = getattr(usage, "completion_tokens", None)
        total = getattr(usage, "total_tokens", None)
        details = getattr(usage, "prompt_tokens_details", None)
        cached = details.get("cached_tokens") if isinstance(details, dict) else getattr(details, "cached_tokens", None)
        if isinstance(prompt, int) and isinstance(completion, int):
            prompt, completion = max(0, prompt), max(0, completion)
            cached = min(prompt, max(0, cached)) if isinstance(cached, int) else 0
            return prompt, completion, cached
        if isinstance(total, int):
            return max(0, total), 0, 0
        est_prompt = sum(len(m["content"]) for m in messages) // 4 + 1
        return est_prompt, len(text or "") // 4, 0


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
