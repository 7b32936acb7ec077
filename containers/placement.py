"""Where each agent's container goes among several Docker hosts: the hosts, what this world's
containers reserve on each, and the policy for the next one.

An agent's container goes to the up host where the most copies of its limits still fit, i.e.
max over hosts of min(free CPUs / its cpus, free memory / its memory), where free = the
daemon's NCPU and MemTotal minus what this world's containers there reserve; ties go to the
host listed first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.sandbox import SandboxLimits, SandboxStats

if TYPE_CHECKING:
    from containers.docker_host import HostSandbox
    from containers.endpoints import HostFacts, SSHTunnel

BACKEND = "docker"  # what the multi-host sandbox calls itself in readings
MIN_CPUS = 0.01  # an agent that sold all its rate still takes the smallest quota


def headroom(
    ncpu: float, mem_total: int, reserved_cpus: float, reserved_memory: int, limits: SandboxLimits
) -> float:
    """How many more containers of `limits` fit in what is left of a host (may be negative)."""
    cpus = max(limits.cpus, MIN_CPUS)
    memory = max(limits.memory_bytes, 1)
    return min((ncpu - reserved_cpus) / cpus, (mem_total - reserved_memory) / memory)


@dataclass(eq=False)
class Host:
    """One Docker endpoint and what the multi-host sandbox knows of it."""

    endpoint: str
    order: int
    up: bool = False
    sandbox: HostSandbox | None = None
    facts: HostFacts | None = None
    error: str = "not checked yet"  # why it is down
    next_check: float = 0.0
    checking: bool = False
    losses: int = 0
    agents: set[str] = field(default_factory=set)
    tunnel: SSHTunnel | None = None

    @property
    def usable(self) -> bool:
        return self.up and self.sandbox is not None and self.facts is not None

    def url(self) -> str:
        return self.tunnel.url if self.tunnel is not None else self.endpoint


def status_reading(agent_id: str, limits: SandboxLimits, status: str, host: Host | None) -> SandboxStats:
    """A status-only reading of an agent's sandbox, naming its host ("none" when it has none)."""
    return SandboxStats(
        agent_id=agent_id,
        backend=BACKEND,
        status=status,
        memory_limit_bytes=limits.memory_bytes,
        cpus=limits.cpus,
        host=host.endpoint if host is not None else "none",
    )


class Placement:
    """The book: every started agent's limits (placed or not), the host each placed agent's
    sandbox is on, and the ranking of hosts for the next placement."""

    def __init__(self, hosts: list[Host]) -> None:
        self.hosts = hosts
        self.limits: dict[str, SandboxLimits] = {}  # every started agent, placed or not
        self.where: dict[str, Host] = {}

    def reserved(self, host: Host) -> tuple[float, int]:
        cpus = memory = 0
        for agent_id in host.agents:
            limits = self.limits.get(agent_id)
            if limits is not None:
                cpus += max(limits.cpus, MIN_CPUS)
                memory += limits.memory_bytes
        return cpus, memory

    def rank(self, limits: SandboxLimits, exclude: Sequence[Host] = ()) -> list[Host]:
        """Up hosts, the one with the most room for `limits` first (ties: listed first)."""
        scored = []
        for host in self.hosts:
            if not host.usable or host in exclude:
                continue
            assert host.facts is not None
            cpus, memory = self.reserved(host)
            room = headroom(host.facts.ncpu, host.facts.mem_total, cpus, memory, limits)
            scored.append((-room if math.isfinite(room) else 0.0, host.order, host))
        scored.sort(key=lambda item: (item[0], item[1]))
        return [host for _, _, host in scored]

    def assign(self, agent_id: str, host: Host) -> None:
        self.unassign(agent_id)
        self.where[agent_id] = host
        host.agents.add(agent_id)

    def unassign(self, agent_id: str) -> Host | None:
        host = self.where.pop(agent_id, None)
        if host is not None:
            host.agents.discard(agent_id)
        return host

    def usable_host(self, agent_id: str) -> Host | None:
        """The host the agent's sandbox is on, if that host is up."""
        host = self.where.get(agent_id)
        return host if host is not None and host.usable else None

    def hosts_status(self) -> list[dict[str, Any]]:
        """Each host: up or down (and why), capacity, what this world reserves there."""
        rows = []
        for h in self.hosts:
            cpus, memory = self.reserved(h)
            rows.append(
                {
                    "endpoint": h.endpoint,
                    "up": h.usable,
                    "error": "" if h.usable else h.error,
                    "ncpu": h.facts.ncpu if h.facts else 0,
                    "mem_total": h.facts.mem_total if h.facts else 0,
                    "reserved_cpus": round(cpus, 6),
                    "reserved_memory": memory,
                    "agents": len(h.agents),
                    "losses": h.losses,
                }
            )
        return rows
