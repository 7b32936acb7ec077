"""The child process `engine.local_llm` starts: llama-cpp-python's OpenAI-compatible server,
reporting how many prompt tokens its cache served and where each request's time went.

llama.cpp keeps the last request's tokens in its KV cache and evaluates only what differs
after the longest common prefix; the server does not say how much that was. Here each
chat completion also answers `usage.prompt_tokens_details.cached_tokens` (the field
OpenAI and vLLM use), measured from the tokens in the cache before and after the call,
so the brain's report gives new and cached prompt tokens per turn.

Each usage also carries `timings`, named as llama.cpp's own server names them: prompt
tokens evaluated and the milliseconds that took (`prompt_n`, `prompt_ms`), tokens
generated and their milliseconds (`predicted_n`, `predicted_ms`), and the whole call
(`total_ms`: also the chat template, the grammar and sampling), read from llama.cpp's
performance counters around the call. The benchmark splits a turn's time with them.

Run as `python -m engine.local_llm_server` with llama-cpp-python's own server options.
Imports nothing of the engine (it runs beside it, not in it).
"""

from __future__ import annotations

import sys
from typing import Any

from typing_extensions import NotRequired, TypedDict


class PromptTokensDetails(TypedDict):
    cached_tokens: int


class Timings(TypedDict):
    prompt_n: int
    prompt_ms: float
    predicted_n: int
    predicted_ms: float
    total_ms: float


class UsageWithCache(TypedDict):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: NotRequired[PromptTokensDetails]
    timings: NotRequired[Timings]


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def _report_cached_tokens(llama_cls: Any) -> None:
    import time

    import llama_cpp

    create = llama_cls.create_chat_completion

    def create_chat_completion(self: Any, *args: Any, **kwargs: Any) -> Any:
        before = self._input_ids.tolist()
        llama_cpp.llama_perf_context_reset(self._ctx.ctx)
        started = time.perf_counter()
        result = create(self, *args, **kwargs)
        total_ms = (time.perf_counter() - started) * 1000.0
        perf = llama_cpp.llama_perf_context(self._ctx.ctx)
        usage = result.get("usage") if isinstance(result, dict) else None
        if isinstance(usage, dict) and not kwargs.get("stream"):
            usage["timings"] = {
                "prompt_n": int(perf.n_p_eval), "prompt_ms": round(float(perf.t_p_eval_ms), 3),
                "predicted_n": int(perf.n_eval), "predicted_ms": round(float(perf.t_eval_ms), 3),
                "total_ms": round(total_ms, 3),
            }
        if isinstance(usage, dict) and isinstance(usage.get("prompt_tokens"), int):
            n = usage["prompt_tokens"]
            prompt = self._input_ids[:n].tolist()
            common = _common_prefix(before, prompt)
            # When the whole prompt is cached, llama.cpp evaluates its last token again to
            # refresh the logits: that one is new work.
            cached = common - 1 if common >= n else common
            usage["prompt_tokens_details"] = {"cached_tokens": max(0, cached)}
        return result

    llama_cls.create_chat_completion = create_chat_completion


def _end_with_parent() -> None:
    """Exit when the process that started this one is gone (killed without a chance to
    stop its server): a model server nobody uses must not hold a core."""
    import os
    import threading
    import time

    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main() -> None:
    _end_with_parent()
    import llama_cpp
    import llama_cpp.llama_types as types

    # The server checks its answers against these types (FastAPI drops unknown keys):
    # the usage of a chat completion may carry the details, before the routes are built.
    types.ChatCompletion.__annotations__["usage"] = UsageWithCache
    _report_cached_tokens(llama_cpp.Llama)
    from llama_cpp.server import __main__ as server_main

    sys.argv[0] = "engine.local_llm_server"
    server_main.main()


if __name__ == "__main__":
    main()
