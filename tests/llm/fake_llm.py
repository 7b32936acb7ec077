"""An OpenAI-compatible chat server on loopback, scripted by the tests.

Real HTTP (stdlib ThreadingHTTPServer on 127.0.0.1, an ephemeral port, in a thread):
`POST /v1/chat/completions` answers the next scripted step with the real response shape,
`usage` included. Steps:

    reply(content, prompt=, completion=)   200 with that message and usage
    reply(content, usage=False)            200 without `usage`
    rate_limited(retry_after)              429 with a Retry-After header
    error(status, message)                 an error status with an OpenAI-style body
    slow(step, delay)                      the step, after `delay` real seconds

When the script runs out, `default` answers (a long sleep unless a test sets it).
Every request is recorded with its arrival time (`requests`).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable


def reply(content: Any, prompt: int = 100, completion: int = 20, usage: bool = True,
          finish_reason: str = "stop") -> dict[str, Any]:
    if not isinstance(content, str):
        content = json.dumps(content)
    return {"status": 200, "content": content, "usage": (prompt, completion) if usage else None,
            "finish_reason": finish_reason}


def rate_limited(retry_after: float | str) -> dict[str, Any]:
    return {"status": 429, "headers": {"Retry-After": str(retry_after)},
            "error": {"message": "Rate limit reached, slow down", "type": "rate_limit_error", "code": "rate_limit"}}


def error(status: int, message: str) -> dict[str, Any]:
    return {"status": status, "error": {"message": message, "type": "invalid_request_error", "code": None}}


def slow(step: dict[str, Any], delay: float) -> dict[str, Any]:
    return {**step, "delay": delay}


class Recorded:
    def __init__(self, body: dict[str, Any], headers: dict[str, str], t: float) -> None:
        self.body = body
        self.headers = headers
        self.t = t

    @property
    def system(self) -> str:
        return self.body["messages"][0]["content"]

    @property
    def user(self) -> str:
        return self.body["messages"][-1]["content"]


class FakeLLM:
    def __init__(self) -> None:
        self.script: deque[dict[str, Any]] = deque()
        self.default = reply({"action": "sleep", "seconds": 1000})
        # When set, answers every request the script does not: body -> step.
        self.responder: Callable[[dict[str, Any]], dict[str, Any]] | None = None
        self.requests: list[Recorded] = []
        self.served = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path != "/v1/chat/completions":
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                with fake._lock:
                    fake.requests.append(Recorded(body, {k.lower(): v for k, v in self.headers.items()}, time.monotonic()))
                    step = fake.script.popleft() if fake.script else None
                if step is None:
                    step = fake.responder(body) if fake.responder is not None else fake.default
                delay = step.get("delay", 0)
                if delay and fake._stop.wait(delay):
                    return  # shutting down
                try:
                    self._answer(step, body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def _answer(self, step: dict[str, Any], body: dict[str, Any]) -> None:
                status = step["status"]
                if status != 200:
                    self._send(status, {"error": step["error"]}, step.get("headers", {}))
                    return
                with fake._lock:
                    fake.served += 1
                    n = fake.served
                payload: dict[str, Any] = {
                    "id": f"chatcmpl-{n}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body.get("model", "fake"),
                    "choices": [{
                        "index": 0,
                        "message": {"role": "assistant", "content": step["content"]},
                        "finish_reason": step["finish_reason"],
                        "logprobs": None,
                    }],
                }
                if step["usage"] is not None:
                    p, c = step["usage"]
                    payload["usage"] = {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}
                self._send(200, payload)

            def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that hung up mid-answer is part of the timeout tests

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), name="fake-llm", daemon=True)

    def push(self, *steps: dict[str, Any]) -> FakeLLM:
        with self._lock:
            self.script.extend(steps)
        return self

    def start(self) -> FakeLLM:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join()


# -- worlds with LLM agents ------------------------------------------------------------------------


def llm_params(server: FakeLLM, **overrides: Any) -> dict[str, Any]:
    """Brain params for the fake server: small timeouts, exact accounting."""
    params: dict[str, Any] = {
        "base_url": server.url,
        "model": "fake-model",
        "think_cost": 0.1,
        "compute_per_token": 0.01,
        "dollars_per_1k_tokens": 0.0,
        "timeout": 2.0,
        "max_retries": 2,
        "retry_backoff": 0.05,
        "max_retry_wait": 1.0,
    }
    params.update(overrides)
    return params


def llm_world(server: FakeLLM, *, params: dict[str, Any] | None = None, llm_budget: float = 1.0,
              llm: dict[str, Any] | None = None, others: list[dict[str, Any]] | None = None):
    """A world on a virtual clock with one LLM agent `llm001` (capacity 100, rate 0: its
    compute balance is exact arithmetic) and any other agent groups."""
    from engine.clock import VirtualClock
    from engine.config import parse_world
    from engine.world import World

    group = {"brain": "llm", "prefix": "llm", "count": 1, "scrip": 20, "rate": 0.0, "capacity": 100.0,
             "params": params if params is not None else llm_params(server)}
    group.update(llm or {})
    config = parse_world({
        "name": "llm-test",
        "seed": 1,
        "llm_budget": llm_budget,
        "oracle": {"resolution_interval": 60.0},
        "agents": [group, *(others or [])],
    }, source="test")
    return World(config, clock=VirtualClock())


def events(world, kind: str) -> list[Any]:
    return [e for e in world.bus.recent if e.kind == kind]
