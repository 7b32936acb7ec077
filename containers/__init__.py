"""Sandboxes for agents' code: Docker, bubblewrap and subprocess backends of engine.sandbox.Sandbox, the
stats monitor, the agent image, `MultiHostSandbox` (agents' containers spread over several
Docker daemons), and `choose_sandbox`, which picks one and says why."""

from containers.base import BaseSandbox, SandboxError
from containers.bwrap_backend import BwrapSandbox
from containers.calibrate import compute_for_cpu_seconds, cpus_for_rate
from containers.choose import SandboxChoice, choose_sandbox
from containers.docker_backend import DockerSandbox, cleanup_orphans
from containers.multihost import MultiHostSandbox
from containers.stats import StatsMonitor
from containers.subprocess_backend import SubprocessSandbox

__all__ = [
    "BaseSandbox",
    "BwrapSandbox",
    "DockerSandbox",
    "MultiHostSandbox",
    "SandboxChoice",
    "SandboxError",
    "StatsMonitor",
    "SubprocessSandbox",
    "choose_sandbox",
    "cleanup_orphans",
    "compute_for_cpu_seconds",
    "cpus_for_rate",
]
