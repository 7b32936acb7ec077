"""Host side of the runner protocol: JSON lines to and from a runner, replies as RunResults."""

from __future__ import annotations

import json
import struct
from functools import cache
from importlib import resources
from typing import Any

import anyio
from anyio.abc import ByteReceiveStream, ByteSendStream
from anyio.streams.buffered import BufferedByteReceiveStream

from engine.sandbox import RunResult

MAX_LINE_BYTES = 2 * 1024 * 1024  # the runner caps replies at 1 MiB of JSON
STDERR_TAIL_BYTES = 4096
FAILURES = {"timeout", "oom", "pids", "error", "sandbox", "invalid"}


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


class Channel:
    """One runner's request/reply stream. Not shared: the sandbox holds a lock per agent."""

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
        self._next_id = 0
        self.hello: dict[str, Any] = {}

    @property
    def stderr_tail(self) -> str:
        tail = getattr(self._receive, "stderr_tail", b"")
        return tail.decode("utf-8", "replace").strip()

    async def read_hello(self, timeout: float) -> dict[str, Any]:
        with anyio.fail_after(timeout):
            self.hello = await self._receive_json()
        if not self.hello.get("ready"):
            raise RunnerGone(f"unexpected first line from the runner: {self.hello!r}")
        return self.hello

    async def call(self, code: str, args: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send one request and wait for its reply; stale replies of abandoned calls are skipped."""
        self._next_id += 1
        request_id = self._next_id
        line = json.dumps(
            {"id": request_id, "code": code, "args": args, "timeout": timeout},
            separators=(",", ":"),
        )
        # A half-written request would garble the stream for every later call.
        with anyio.CancelScope(shield=True):
            try:
                await self._send.send(line.encode() + b"\n")
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
                raise RunnerGone(f"cannot write to the runner: {exc!r}") from exc
        while True:
            reply = await self._receive_json()
            if reply.get("id") == request_id:
                return reply

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
            raise RunnerGone("the runner wrote an over-long line") from exc
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise RunnerGone(f"the runner wrote something that is not JSON: {raw[:200]!r}") from exc
        if not isinstance(value, dict):
            raise RunnerGone(f"the runner wrote {value!r}")
        return value

    async def aclose(self) -> None:
        with anyio.CancelScope(shield=True):
            for stream in (self._send, self._lines):
                try:
                    await stream.aclose()
                except Exception:  # noqa: BLE001 - closing a broken stream may fail again
                    pass
            for closer in self._closers:
                try:
                    closer()
                except Exception:  # noqa: BLE001
                    pass


def to_result(reply: dict[str, Any], *, replaced: bool = False) -> RunResult:
    """A runner reply as the engine's RunResult."""
    ok = bool(reply.get("ok"))
    failure = None if ok else reply.get("failure", "error")
    if failure is not None and failure not in FAILURES:
        failure = "error"
    return RunResult(
        ok=ok,
        value=reply.get("value") if ok else None,
        failure=failure,
        error=None if ok else str(reply.get("error") or failure),
        cpu_seconds=float(reply.get("cpu_seconds") or 0.0),
        peak_memory_bytes=int(reply.get("peak_memory_bytes") or 0),
        wall_seconds=float(reply.get("wall_seconds") or 0.0),
        replaced=replaced,
    )


def check_request(code: Any, args: Any, timeout: Any) -> str | None:
    """Why a request cannot be sent to a runner, or None when it can."""
    if not isinstance(code, str):
        return "code must be a string"
    if not isinstance(args, dict) or not all(isinstance(k, str) for k in args):
        return "args must be a dict with string keys"
    try:
        json.dumps(args)
    except (TypeError, ValueError) as exc:
        return f"args are not JSON: {exc}"
    if not isinstance(timeout, (int, float)) or not timeout > 0:
        return f"timeout must be a positive number of seconds, not {timeout!r}"
    return None
