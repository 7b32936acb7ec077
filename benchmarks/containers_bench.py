"""Benchmarks of the agent sandboxes (SPEC §8), each against its target:

- warm call round trip of a trivial code artifact (median; target < 10 ms), with the bare
  cost of what every call does at least (fork a Python process, send a line through a pipe
  and back) measured in the same run as the baseline,
- starting 50 agent sandboxes at once (target < 30 s),
- monitoring 50 sandboxes at 1 Hz (CPU of the monitor; target < 5% of one core), with the
  daemon's stats API, which the monitor avoids, as the baseline for containers.

    .venv/bin/python benchmarks/containers_bench.py [--backend all] [--agents 50] [--calls 300]
    .venv/bin/python benchmarks/containers_bench.py --against ../main   # another checkout

`--against DIR` measures only the warm round trip, of this checkout's backends and of DIR's
(an earlier version), in alternating rounds of separate processes, so both see the same load.

Needs a Docker daemon and the agent image (`bash .ci/docker-setup.sh`) for the docker
figures and bubblewrap for the bwrap ones; the subprocess backend is measured too.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from containers.bwrap_backend import BwrapSandbox, find_bwrap  # noqa: E402
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


BARE = """
import os, statistics, sys, time
times = []
for _ in range(int(sys.argv[1])):
    started = time.perf_counter()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(w, b'{"ok": true}\\n')
        os._exit(0)
    os.close(w)
    os.read(r, 64)
    os.close(r)
    os.waitpid(pid, 0)
    times.append((time.perf_counter() - started) * 1000)
print(statistics.median(times))
"""


def bare_round_trip_ms(calls: int) -> float:
    """The floor under every backend's call, on this machine now: a runner-sized Python
    process forks, the child writes a line into a pipe and exits, the parent reads it and
    reaps the child. Median, in ms."""
    done = subprocess.run([sys.executable, "-I", "-c", BARE, str(calls)], capture_output=True,
                          text=True, check=True)
    return float(done.stdout)


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
    median = statistics.median(times)
    bare = bare_round_trip_ms(max(50, calls // 3))
    row(f"{label}: warm round trip, median", median, "ms", 10.0,
        f"(baseline fork+pipe {bare:.2f} ms: {median / bare:.1f}x)")
    row(f"{label}: warm round trip, p90", times[int(len(times) * 0.9)], "ms")
    # Host-measured: /proc counts in 10 ms ticks (so most trivial calls show 0), cgroups in ns.
    row(f"{label}: CPU charged per trivial call, mean", statistics.fmean(cpu), "ms")
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


ROUND_TRIPS = """
import json, sys, time
import anyio
sys.path.insert(0, sys.argv[1])
from engine.sandbox import SandboxLimits

async def main(backend, calls):
    if backend == "docker":
        from containers.docker_backend import DockerSandbox
        sandbox = DockerSandbox(f"bench-{time.time_ns() % 10**9}")
    else:
        from containers.subprocess_backend import SubprocessSandbox
        sandbox = SubprocessSandbox()
    async with sandbox:
        await sandbox.start("bench", SandboxLimits(cpus=1.0))
        for i in range(15):
            await sandbox.run("bench", "def run(x):\\n    return x + 1\\n", {"x": i}, 10)
        times = []
        for i in range(calls):
            started = time.perf_counter()
            result = await sandbox.run("bench", "def run(x):\\n    return x + 1\\n", {"x": i}, 10)
            times.append((time.perf_counter() - started) * 1000)
            assert result.ok and result.value == i + 1, result
    print(json.dumps(times))

anyio.run(main, sys.argv[2], int(sys.argv[3]))
"""


def against(other: str, backends: list[str], rounds: int = 4, calls: int = 50) -> None:
    """Warm round trips of this checkout and of `other`, alternating, median of all rounds."""
    here = str(Path(__file__).resolve().parents[1])
    for backend in backends:
        times: dict[str, list[float]] = {here: [], other: []}
        for _ in range(rounds):
            for checkout in (other, here):
                done = subprocess.run(
                    [sys.executable, "-c", ROUND_TRIPS, checkout, backend, str(calls)],
                    capture_output=True, text=True, check=True,
                )
                times[checkout] += json.loads(done.stdout.strip().splitlines()[-1])
        mine, theirs = statistics.median(times[here]), statistics.median(times[other])
        row(f"{backend}: warm round trip, median, {other} (baseline)", theirs, "ms", 10.0)
        row(f"{backend}: warm round trip, median, this checkout", mine, "ms", 10.0,
            f"({mine / theirs:.2f}x the baseline, {rounds} alternating rounds of {calls})")


async def bench_bwrap(args: argparse.Namespace) -> None:
    if find_bwrap() is None:
        print("bwrap: skipped, bubblewrap is not installed (apt install bubblewrap)")
        return
    sandbox = BwrapSandbox()
    async with sandbox:
        await round_trips(sandbox, args.calls, "bwrap")
        await start_many(sandbox, args.agents, "bwrap")
        await monitor_cost(sandbox, args.monitor_seconds, "bwrap")


async def main(args: argparse.Namespace) -> None:
    load = os.getloadavg()[0]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {load:.1f}")
    if args.against:
        backends = {"all": ["docker", "subprocess"], "bwrap": []}.get(args.backend, [args.backend])
        await anyio.to_thread.run_sync(against, args.against, backends)
        print(f"load {os.getloadavg()[0]:.1f} at the end")
        return
    if args.backend in ("docker", "all"):
        await bench_docker(args)
    if args.backend in ("bwrap", "all"):
        await bench_bwrap(args)
    if args.backend in ("subprocess", "all"):
        await bench_subprocess(args)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--monitor-seconds", type=float, default=10.0)
    parser.add_argument("--backend", choices=("docker", "bwrap", "subprocess", "all"), default="all")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--against", metavar="DIR",
                        help="only compare warm round trips with another checkout's backends")
    anyio.run(main, parser.parse_args())
