"""Sweep: the local pool against one run after another, and Ray's overhead per run against
the pool, on the same runs measured in the same process.

    .venv/bin/python benchmarks/sweep_bench.py [--runs 32] [--agents 1000] [--duration 600]
                                               [--workers N] [--no-ray] [--json FILE]

The runs are the boltzmann scenario under virtual time, one per seed (seeds 0..runs-1).
Serial: the sweep's own run function called in this process, one run after another (the
baseline: no process start, no pickling). Pool: `ecology sweep`'s local pool with N workers
(default one per core). Ray: a local instance with N CPUs, started before the clock starts
(its start is printed apart), one Ray task per run. All three must give the same table
(timing columns aside), which the benchmark checks. The machine is shared: the load
average is printed before and after each phase.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.sweep import load_sweep, run_sweep  # noqa: E402
from engine.sweep.runner import default_workers  # noqa: E402
from engine.sweep.tables import TIMING, write_tables  # noqa: E402
from engine.sweep.worker import run_one  # noqa: E402


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def sweep_file(root: Path, runs: int, agents: int, duration: float) -> Path:
    path = root / "bench.toml"
    path.write_text(
        f'name = "bench"\nduration = {float(duration)!r}\nvirtual_time = true\nseeds = {runs}\n'
        f'time_limit = 36000.0\n\n[base]\nscenario = "boltzmann"\nagents = {agents}\n',
        encoding="utf-8",
    )
    return path


def deterministic(out: Path) -> str:
    """runs.csv without the timing columns, and the other two tables whole."""
    import csv

    with (out / "runs.csv").open(newline="", encoding="utf-8") as f:
        rows = [{k: v for k, v in row.items() if k not in TIMING} for row in csv.DictReader(f)]
    return json.dumps(rows) + (out / "windows.csv").read_text() + (out / "summary.csv").read_text()


def phase(name: str, fn) -> dict:
    before = load()
    cpu0, t0 = time.process_time(), time.perf_counter()
    fn()
    wall = time.perf_counter() - t0
    result = {"wall_s": wall, "parent_cpu_s": time.process_time() - cpu0, "load_before": before, "load_after": load()}
    print(f"{name:8} wall {wall:8.2f} s   load {before} -> {result['load_after']}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=32)
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=600.0, help="world seconds per run")
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument("--json", metavar="FILE", help="write the figures here too")
    args = parser.parse_args()
    quiet = Console(file=io.StringIO())
    root = Path(tempfile.mkdtemp(prefix="sweep-bench-"))
    sweep = load_sweep(sweep_file(root, args.runs, args.agents, args.duration))
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, {args.workers} workers; "
          f"{args.runs} runs of boltzmann at {args.agents:,} agents x {args.duration:g} s, virtual time; "
          f"load {load()}", flush=True)
    figures: dict = {"runs": args.runs, "agents": args.agents, "duration": args.duration, "workers": args.workers}

    records = []
    figures["serial"] = phase("serial", lambda: records.extend(run_one(r) for r in sweep.runs))
    assert all(r["sweep"]["status"] == "ok" for r in records), [r["sweep"]["reason"] for r in records]
    (root / "serial").mkdir()
    write_tables(root / "serial", records, sweep.parameter_names)
    figures["run_cpu_s_mean"] = figures["serial"]["parent_cpu_s"] / args.runs
    figures["pool"] = phase("pool", lambda: run_sweep(sweep, root / "pool", workers=args.workers, console=quiet))
    assert deterministic(root / "pool") == deterministic(root / "serial"), "pool and serial tables differ"
    serial, pool = figures["serial"]["wall_s"], figures["pool"]["wall_s"]
    figures["pool_speedup"] = serial / pool
    print(f"pool vs serial: {serial / pool:.2f}x  (target >= 1.8x on 2 cores); "
          f"one run {figures['run_cpu_s_mean']:.2f} s CPU on average", flush=True)

    if not args.no_ray:
        import ray

        t0 = time.perf_counter()
        ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
        figures["ray_init_s"] = time.perf_counter() - t0
        print(f"ray.init(num_cpus={args.workers}) {figures['ray_init_s']:.2f} s (not counted below)", flush=True)
        try:
            figures["ray"] = phase("ray", lambda: run_sweep(sweep, root / "ray", ray="auto", console=quiet))
        finally:
            ray.shutdown()
        assert deterministic(root / "ray") == deterministic(root / "serial"), "Ray and serial tables differ"
        per_run = (figures["ray"]["wall_s"] - pool) / args.runs
        figures["ray_overhead_per_run_s"] = per_run
        print(f"ray vs pool: {figures['ray']['wall_s'] / pool:.2f}x the pool's wall time, "
              f"{per_run * 1000:+.0f} ms per run", flush=True)
    print("tables identical across " + ("serial, pool and ray" if not args.no_ray else "serial and pool"))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
