"""Benchmarks of the agent sandboxes (SPEC §8), each against its target:

- warm call round trip of a trivial code artifact (median; target < 10 ms),
- starting 50 agent containers at once (target < 30 s),
- monitoring 50 containers at 1 Hz (CPU of the monitor; target < 5% of one core), with the
  daemon's stats API, which the monitor avoids, as the baseline.

    .venv/bin/python benchmarks/containers_bench.py [--agents 50] [--calls 300] [--json out.json]

Needs a Docker daemon and the agent image (`bash .ci/docker-setup.sh`) for the docker
figures; the subprocess backend is measured too, for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from containers.choose import probe_daemon_blocking  # noqa: E402
from containers.docker_backend import DockerSandbox  # noqa: E402
from containers.images import AGENT_IMAGE, image_state  # noqa: E402
from containers.stats import StatsMonitor  # noqa: E402
from containers.subprocess_backend import SubprocessSandbox  # noqa: E402
from engine.sandbox import SandboxLimits  # noqa: E402

TRIVIAL = "def run(x):\n    return x + 1\n"
rows: list[dict[str, Any]] = []


def row(name: str, value: float, unit: str, target: float | None = None, note: str = "") -> None:
    entry = {"name": name, "value": round(value, 4), "unit": unit, "target": target, "note": note}
    rows.append(entry)
    verdict = ""
    if target is not None:
        ratio = value / target
        verdict = (
            f"  target < {target:g} {unit}: ratio {ratio:.3f} {'ok' if ratio < 1 else 'MISSED'}"
        )
    print(f"{name:<50} {value:>10.3f} {unit:<4}{verdict}{'  ' + note if note else ''}", flush=True)


async def round_trips(sandbox: Any, calls: int, label: str) -> None:
    await sandbox.start("bench", SandboxLimits(cpus=1.0))
    for i in range(20):  # warm up
        await sandbox.run("bench", TRIVIAL, {"x": i}, 10)
    times = []
    cpu = []
    for i in range(calls):
        started = time.perf_counter()
        result = await sandbox.run("bench", TRIVIAL, {"x": i}, 10)
        times.append((time.perf_counter() - started) * 1000)
        assert result.ok and result.value == i + 1, result
        cpu.append(result.cpu_seconds * 1000)
    times.sort()
    row(f"{label}: warm round trip, median", statistics.median(times), "ms", 10.0)
    row(f"{label}: warm round trip, p90", times[int(len(times) * 0.9)], "ms")
    row(f"{label}: CPU charged per trivial call, median", statistics.median(cpu), "ms")
    await sandbox.stop("bench")


async def start_many(sandbox: Any, agents: int, label: str) -> float:
    names = [f"agent-{n:03d}" for n in range(agents)]
    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for name in names:
            tg.start_soon(sandbox.start, name, SandboxLimits(cpus=0.1, memory_bytes=64 * 2**20))
    elapsed = time.perf_counter() - started
    row(f"{label}: start {agents} agents", elapsed, "s", 30.0)
    async with anyio.create_task_group() as tg:  # every one answers
        for name in names:
            tg.start_soon(sandbox.run, name, TRIVIAL, {"x": 1}, 30)
    return elapsed


async def monitor_cost(sandbox: Any, seconds: float, label: str) -> None:
    monitor = StatsMonitor(sandbox, lambda item: None, interval=1.0)
    await monitor.sample()  # resolves cgroup paths once
    cpu_before, wall_before = time.process_time(), time.perf_counter()
    with anyio.move_on_after(seconds):
        await monitor.run()
    cpu = time.process_time() - cpu_before
    wall = time.perf_counter() - wall_before
    agents = len(sandbox.agents())
    row(
        f"{label}: monitor {agents} at 1 Hz, CPU of one core",
        cpu / wall * 100,
        "%",
        5.0,
        f"({monitor.samples} samples, {cpu * 1000 / max(1, monitor.samples):.1f} ms CPU each)",
    )


def api_stats_baseline(client: Any, container_id: str) -> None:
    started = time.perf_counter()
    client.api.stats(container_id, stream=False)
    row(
        "docker: stats API, one container (baseline)",
        time.perf_counter() - started,
        "s",
        note="the per-container call the monitor avoids",
    )


async def bench_docker(args: argparse.Namespace) -> None:
    probe = probe_daemon_blocking(timeout=3.0)
    if probe.client is None:
        print(f"docker: skipped, no Docker daemon at {probe.where}: {probe.detail}")
        return
    if image_state(probe.client, AGENT_IMAGE) == "missing":
        print(f"docker: skipped, {AGENT_IMAGE} is missing (bash .ci/docker-setup.sh)")
        return
    world = f"bench-{uuid.uuid4().hex[:8]}"
    sandbox = DockerSandbox(world, client=probe.client, owns_client=True)
    async with sandbox:
        started = time.perf_counter()
        await sandbox.start("cold", SandboxLimits())
        row("docker: cold start of one container", time.perf_counter() - started, "s")
        await sandbox.stop("cold")
        await round_trips(sandbox, args.calls, "docker")
        await start_many(sandbox, args.agents, "docker")
        await monitor_cost(sandbox, args.monitor_seconds, "docker")
        container = sandbox.container_of(sandbox.agents()[0])
        await anyio.to_thread.run_sync(api_stats_baseline, probe.client, container.id)
        started = time.perf_counter()
    row(f"docker: stop and remove {args.agents} containers", time.perf_counter() - started, "s")


async def bench_subprocess(args: argparse.Namespace) -> None:
    sandbox = SubprocessSandbox()
    async with sandbox:
        await round_trips(sandbox, args.calls, "subprocess")
        await start_many(sandbox, args.agents, "subprocess")
        await monitor_cost(sandbox, args.monitor_seconds, "subprocess")


async def main(args: argparse.Namespace) -> None:
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    if args.backend in ("docker", "both"):
        await bench_docker(args)
    if args.backend in ("subprocess", "both"):
        await bench_subprocess(args)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--monitor-seconds", type=float, default=10.0)
    parser.add_argument("--backend", choices=("docker", "subprocess", "both"), default="both")
    parser.add_argument("--json", help="also write the figures to this file")
    anyio.run(main, parser.parse_args())
