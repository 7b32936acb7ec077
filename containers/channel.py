"""Host side of the runner protocol: JSON lines to and from a runner, each reply checked
before use (size, strict JSON, finite numbers, the id of the call in flight, known fields)."""

from __future__ import annotations

import contextlib
import json
import secrets
import struct
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import anyio
from anyio.abc import ByteReceiveStream, ByteSendStream
from anyio.streams.buffered import BufferedByteReceiveStream

from containers.meter import Measure
from containers.runner import MAX_ERROR_CHARS, MAX_LINE_BYTES, loads_strict
from engine.sandbox import RunResult

STDERR_TAIL_BYTES = 4096
MAX_TIMEOUT = 24 * 3600.0
FAILURES = {"timeout", "oom", "pids", "error", "sandbox", "invalid", "protocol"}
RUNNER_FAILURES = {"timeout", "oom", "pids", "error", "sandbox", "invalid"}  # a runner may say


class RunnerGone(Exception):
    """The runner stopped answering: its process or container ended, or the stream broke."""


@cache
def runner_source() -> str:
    """The runner's source, passed to `python3 -c` so no image carries a stale copy."""
    return resources.files("containers").joinpath("runner.py").read_text(encoding="utf-8")


class DockerFrames(ByteReceiveStream):
    """The stdout half of a non-tty `docker attach` stream, without its 8-byte frame headers.

    Frames on stderr are kept (a bounded tail) so a runner that dies says why.
    """

    def __init__(self, stream: ByteReceiveStream) -> None:
        self._buffered = BufferedByteReceiveStream(stream)
        self.stderr_tail = b""

    async def receive(self, max_bytes: int = 65536) -> bytes:
        while True:
            try:
                header = await self._buffered.receive_exactly(8)
                kind, size = header[0], struct.unpack(">I", header[4:])[0]
                payload = await self._buffered.receive_exactly(size) if size else b""
            except anyio.IncompleteRead as exc:
                raise anyio.EndOfStream from exc
            if kind == 2:
                self.stderr_tail = (self.stderr_tail + payload)[-STDERR_TAIL_BYTES:]
            elif payload:
                return payload

    async def aclose(self) -> None:
        await self._buffered.aclose()


@dataclass(frozen=True, slots=True)
class Reply:
    """A runner's reply that passed every check: what the call returned, or why it failed."""

    ok: bool
    value: Any = None
    failure: str | None = None
    error: str | None = None


class ProtocolError(RunnerGone):
    """The runner wrote something the protocol does not allow (too long, not JSON, a number
    that is not finite, another call's id, unknown fields): it is not trusted any more."""


def parse_line(raw: bytes) -> dict[str, Any]:
    """One protocol line as a JSON object, strictly (no NaN or Infinity), or ProtocolError."""
    try:
        value = loads_strict(raw)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"not JSON ({str(exc)[:120]}): {raw[:120]!r}") from None
    if not isinstance(value, dict):
        raise ProtocolError(f"not a JSON object: {raw[:120]!r}")
    return value


def check_reply(reply: dict[str, Any], call_id: str) -> Reply:
    """The reply to the call `call_id`, checked field by field, or ProtocolError."""
    if reply.get("id") != call_id:
        raise ProtocolError(f"a reply for another call ({str(reply.get('id'))[:40]!r})")
    ok = reply.get("ok")
    if ok is True:
        if set(reply) != {"id", "ok", "value"}:
            raise ProtocolError(f"unexpected fields in a reply: {sorted(reply)[:8]}")
        return Reply(True, value=reply["value"])
    if ok is not False or set(reply) != {"id", "ok", "failure", "error"}:
        raise ProtocolError(f"a malformed reply: fields {sorted(reply)[:8]}, ok={ok!r}")
    failure, error = reply["failure"], reply["error"]
    if failure not in RUNNER_FAILURES:
        raise ProtocolError(f"an unknown failure {str(failure)[:40]!r}")
    if not isinstance(error, str) or len(error) > MAX_ERROR_CHARS:
        raise ProtocolError("a failure without a short error message")
    return Reply(False, failure=failure, error=error)


class Channel:
    """One runner's request/reply stream. Not shared: the sandbox holds a lock per agent.

    Every line read is bounded and checked before use; anything that is not the reply to
    the call in flight raises ProtocolError, and the sandbox replaces the runner."""

    def __init__(
        self,
        send: ByteSendStream,
        receive: ByteReceiveStream,
        closers: tuple[Any, ...] = (),
    ) -> None:
        self._send = send
        self._lines = BufferedByteReceiveStream(receive)
        self._receive = receive
        self._closers = closers
        self.hello: dict[str, Any] = {}

    @property
    def stderr_tail(self) -> str:
        tail = getattr(self._receive, "stderr_tail", b"")
        return tail.decode("utf-8", "replace").strip()

    async def read_hello(self, timeout: float) -> dict[str, Any]:
        with anyio.fail_after(timeout):
            self.hello = await self._receive_json()
        if self.hello.get("ready") is not True:
            raise ProtocolError(f"unexpected first line from the runner: {self.hello!r:.200}")
        return self.hello

    async def call(self, code: str, args: dict[str, Any], timeout: float) -> Reply:
        """Send one request and wait for its reply."""
        # Unguessable: a process that could write to the runner's stream (none should) still
        # could not answer a call it cannot read.
        call_id = secrets.token_hex(16)
        line = json.dumps(
            {"id": call_id, "code": code, "args": args, "timeout": timeout},
            separators=(",", ":"),
        )
        # A half-written request would garble the stream for every later call.
        with anyio.CancelScope(shield=True):
            try:
                await self._send.send(line.encode() + b"\n")
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
                raise RunnerGone(f"cannot write to the runner: {exc!r}") from exc
        return check_reply(await self._receive_json(), call_id)

    async def _receive_json(self) -> dict[str, Any]:
        try:
            raw = await self._lines.receive_until(b"\n", MAX_LINE_BYTES)
        except (
            anyio.IncompleteRead,
            anyio.EndOfStream,
            anyio.BrokenResourceError,
            anyio.ClosedResourceError,
            OSError,
        ) as exc:
            raise RunnerGone(f"the runner's stream ended ({type(exc).__name__})") from exc
        except anyio.DelimiterNotFound as exc:
            raise ProtocolError(f"a line over {MAX_LINE_BYTES} bytes") from exc
        return parse_line(raw)

    async def aclose(self) -> None:
        with anyio.CancelScope(shield=True):
            for stream in (self._send, self._lines):
                with contextlib.suppress(Exception):  # closing a broken stream may fail again
                    await stream.aclose()
            for closer in self._closers:
                with contextlib.suppress(Exception):
                    closer()


def to_result(reply: Reply, measure: Measure, wall_seconds: float) -> RunResult:
    """A checked reply and the host's measurement of the call, as the engine's RunResult."""
    failure = None if reply.ok else reply.failure
    if failure not in (None, *FAILURES):
        failure = "error"
    return RunResult(
        ok=reply.ok,
        value=reply.value if reply.ok else None,
        failure=failure,  # type: ignore[arg-type]
        error=None if reply.ok else (reply.error or failure),
        cpu_seconds=measure.cpu_seconds,
        peak_memory_bytes=measure.peak_memory_bytes,
        wall_seconds=wall_seconds,
    )


def check_request(code: Any, args: Any, timeout: Any) -> str | None:
    """Why a request cannot be sent to a runner, or None when it can."""
    if not isinstance(code, str):
        return "code must be a string"
    if not isinstance(args, dict) or not all(isinstance(k, str) for k in args):
        return "args must be a dict with string keys"
    try:
        json.dumps(args, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        return f"args are not JSON: {exc}"
    if (
        not isinstance(timeout, (int, float))
        or isinstance(timeout, bool)
        or not 0 < timeout < MAX_TIMEOUT
    ):
        return f"timeout must be a positive number of seconds, not {timeout!r}"
    return None
