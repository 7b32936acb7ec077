"""Sweep: the local pool against one run after another, and Ray's overhead per run against
the pool, on the same runs measured in the same process.

    .venv/bin/python benchmarks/sweep_bench.py [--runs 32] [--agents 1000] [--duration 600]
                                               [--workers N] [--no-ray] [--tiny-runs 64]
                                               [--json FILE]

The runs are the boltzmann scenario under virtual time, one per seed (seeds 0..runs-1).
Serial: the sweep's own run function called in this process, one run after another (the
baseline: no process start, no pickling). Pool: `ecology sweep`'s local pool with N workers
(default one per core). Ray: a local instance with N CPUs, started before the clock starts
(its start is printed apart), one Ray task per run. All three must give the same table
(timing columns aside): the benchmark says which table differs, and exits 1, if not. Then dispatch alone: N and then 2N runs
of 2 agents for 1 s, on Ray and on the pool, where a run is nearly all overhead. The
machine is shared: the load average is printed before and after each phase, and the cores
each local phase got (its CPU time over its wall time).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
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


def sweep_file(root: Path, runs: int, agents: int, duration: float, name: str = "bench") -> Path:
    path = root / f"{name}.toml"
    path.write_text(
        f'name = "bench"\nduration = {float(duration)!r}\nvirtual_time = true\nseeds = {runs}\n'
        f'time_limit = 36000.0\n\n[base]\nscenario = "boltzmann"\nagents = {agents}\n',
        encoding="utf-8",
    )
    return path


def deterministic(out: Path) -> tuple[str, str, str]:
    """runs.csv without the timing columns, and the other two tables whole."""
    import csv

    with (out / "runs.csv").open(newline="", encoding="utf-8") as f:
        rows = [{k: v for k, v in row.items() if k not in TIMING} for row in csv.DictReader(f)]
    return ("\n".join(json.dumps(r) for r in rows), (out / "windows.csv").read_text(),
            (out / "summary.csv").read_text())


def children_cpu() -> float:
    """CPU of this process's finished children (the pool's workers, once it is closed)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def same(out: Path, baseline: Path) -> bool:
    """The same tables as the baseline's; if not, say which table and where."""
    ours, theirs = deterministic(out), deterministic(baseline)
    for name, a, b in zip(("runs.csv", "windows.csv", "summary.csv"), ours, theirs):
        if a != b:
            pairs = enumerate(zip(a.splitlines(), b.splitlines()))
            line = next((i for i, (x, y) in pairs if x != y), min(len(a.splitlines()), len(b.splitlines())))
            print(f"  {out.name}/{name} differs from {baseline.name}'s, first at line {line + 1}", flush=True)
    return ours == theirs


def phase(name: str, fn) -> dict:
    before = load()
    cpu0, kids0, t0 = time.process_time(), children_cpu(), time.perf_counter()
    fn()
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0 + children_cpu() - kids0
    result = {"wall_s": wall, "cpu_s": cpu, "parent_cpu_s": time.process_time() - cpu0,
              "load_before": before, "load_after": load()}
    # cores it got: on a shared machine, what the other sessions left decides the speedup
    got = f"{cpu / wall:4.2f} cores" if "ray" not in name else "(Ray's workers are not ours to count)"
    print(f"{name:14} wall {wall:8.2f} s   CPU {cpu:8.2f} s = {got}   load {before} -> {result['load_after']}",
          flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=32)
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=600.0, help="world seconds per run")
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument("--tiny-runs", type=int, default=64, help="runs of 2 agents x 1 s, to time dispatch alone")
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
    figures["run_cpu_s_mean"] = figures["serial"]["cpu_s"] / args.runs
    figures["pool"] = phase("pool", lambda: run_sweep(sweep, root / "pool", workers=args.workers, console=quiet))
    differ = [] if same(root / "pool", root / "serial") else ["pool"]
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
            # Dispatch alone: runs so small (2 agents, 1 s) that a run is nearly all overhead,
            # N of them and then 2N: the difference is the cost of N more runs, start-up aside.
            tiny = {n: load_sweep(sweep_file(root, n, 2, 1.0, name=f"tiny{n}"))
                    for n in (args.tiny_runs, 2 * args.tiny_runs)}
            for n, t in tiny.items():
                figures[f"tiny_ray_{n}"] = phase(f"tiny ray {n}", lambda t=t, n=n: run_sweep(
                    t, root / f"tiny-ray-{n}", ray="auto", console=quiet))
        finally:
            ray.shutdown()
        for n, t in tiny.items():
            figures[f"tiny_pool_{n}"] = phase(f"tiny pool {n}", lambda t=t, n=n: run_sweep(
                t, root / f"tiny-pool-{n}", workers=args.workers, console=quiet))
        n = args.tiny_runs
        for name in ("ray", "pool"):
            one, two = figures[f"tiny_{name}_{n}"]["wall_s"], figures[f"tiny_{name}_{2 * n}"]["wall_s"]
            figures[f"{name}_dispatch_ms_per_run"] = (two - one) / n * 1000
            figures[f"{name}_start_s"] = 2 * one - two
        print(f"dispatch per run (runs of 2 agents x 1 s, {n} more runs): ray "
              f"{figures['ray_dispatch_ms_per_run']:.1f} ms, pool {figures['pool_dispatch_ms_per_run']:.1f} ms; "
              f"start-up: pool {figures['pool_start_s']:.2f} s (its workers), ray "
              f"{figures['ray_start_s']:.2f} s (after ray.init)", flush=True)
    figures["tables_differ_from_serial"] = differ
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    if differ:  # the figures stand, but the engine broke determinism: say so and fail
        sys.exit(f"tables differ from serial's: {', '.join(differ)} (kept in {root})")
    print("tables identical across " + ("serial, pool and ray" if not args.no_ray else "serial and pool"))


if __name__ == "__main__":
    main()
