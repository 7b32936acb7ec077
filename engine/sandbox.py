"""The engine's view of a sandbox: where agent-written code runs.

The engine knows sandboxes only through this protocol; `containers/` implements it
(Docker, bubblewrap and subprocess backends). Nothing here imports docker.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Protocol, runtime_checkable

# Why a call failed, when it did. "error" is an exception raised by the agent's code;
# "protocol" a reply from the sandbox that broke the protocol (it is replaced).
FailureKind = Literal["timeout", "oom", "pids", "error", "sandbox", "invalid", "protocol"]


@dataclass(frozen=True, slots=True)
class SandboxLimits:
    """Resource limits of one agent's sandbox (SPEC §8)."""

    cpus: float = 0.5  # CPU quota in cores; follows the agent's compute rate
    memory_bytes: int = 128 * 1024 * 1024
    pids: int = 64
    tmpfs_bytes: int = 16 * 1024 * 1024
    network: bool = False


@dataclass(frozen=True, slots=True)
class RunResult:
    """What running a code artifact's `run(...)` gave."""

    ok: bool
    value: Any = None  # JSON-compatible return value of run(...) when ok
    failure: FailureKind | None = None
    error: str | None = None  # a human-readable reason when not ok
    # Measured by the host, never reported from inside the sandbox.
    cpu_seconds: float = 0.0  # CPU time the call really used (charged to compute)
    peak_memory_bytes: int = 0
    wall_seconds: float = 0.0
    replaced: bool = False  # the sandbox was replaced after this call (OOM, pids, timeout)


def billable_cpu_seconds(result: RunResult) -> float:
    """The CPU seconds to charge for a call: the sandbox's host-side figure, never negative,
    never NaN or infinite (a figure that is not a finite number >= 0 is charged as 0)."""
    cpu = result.cpu_seconds
    if type(cpu) not in (int, float) or not math.isfinite(cpu) or cpu < 0:
        return 0.0
    return float(cpu)


@dataclass(frozen=True, slots=True)
class SandboxStats:
    """One reading of one agent's sandbox, published as a coalescing event."""

    agent_id: str
    backend: str  # "docker" | "bwrap" | "subprocess"
    status: str  # "running" | "starting" | "stopped" | "replacing" | "gone"
    cpu_percent: float = 0.0
    memory_bytes: int = 0
    memory_limit_bytes: int = 0
    pids: int = 0
    restarts: int = 0
    oom_kills: int = 0
    cpus: float = 0.0
    host: str = "local"
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SandboxIncident:
    """A sandbox failure worth an event: OOM kill, timeout, pids exhaustion, replacement."""

    agent_id: str
    kind: FailureKind
    detail: str


# A sandbox reports stats and incidents through a callback the world provides.
Reporter = Callable[[SandboxStats | SandboxIncident], None]


@runtime_checkable
class Sandbox(Protocol):
    """A place where each agent's code runs under real limits.

    All methods are coroutines and must never block the event loop: blocking SDK calls go
    to worker threads. Failures of agent code are results, never exceptions; an exception
    means the sandbox itself is broken.
    """

    name: str  # "docker", "bwrap" or "subprocess": shown in the UI

    async def start(self, agent_id: str, limits: SandboxLimits) -> None: ...

    async def stop(self, agent_id: str) -> None: ...

    async def run(
        self, agent_id: str, code: str, args: dict[str, Any], timeout: float
    ) -> RunResult: ...

    async def set_cpus(self, agent_id: str, cpus: float) -> None: ...

    async def close(self) -> None: ...
