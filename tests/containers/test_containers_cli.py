"""`ecology containers ...`: wiring into a parent parser, calibration and its arithmetic."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from containers.calibrate import Calibration, compute_for_cpu_seconds, cpus_for_rate
from containers.cli import add_subcommands, main


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="ecology")
    add_subcommands(top.add_subparsers(dest="command"))
    return top


def test_subcommands_plug_into_a_parent_parser() -> None:
    args = parser().parse_args(
        [
            "containers",
            "calibrate",
            "--compute-per-cpu",
            "20",
            "--seconds",
            "1.5",
            "--sandbox",
            "subprocess",
        ]
    )
    assert args.containers_command == "calibrate"
    assert args.compute_per_cpu == 20 and args.seconds == 1.5 and args.sandbox == "subprocess"
    assert callable(args.func)
    build = parser().parse_args(["containers", "build", "--offline", "--mirror", "http://m/debian"])
    assert build.offline and build.mirror == "http://m/debian" and callable(build.func)


def test_calibrate_suggests_a_total_rate(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "containers",
            "calibrate",
            "--sandbox",
            "subprocess",
            "--sandboxes",
            "2",
            "--seconds",
            "0.4",
            "--compute-per-cpu",
            "10",
            "--headroom",
            "0",
        ]
    )
    out = capsys.readouterr()
    assert code == 0, out
    assert "subprocess sandbox" in out.err
    assert "[compute]" in out.out
    rate = float(out.out.split("total_rate = ")[1].split()[0])
    # Two spinners: at most two cores, 10 units per CPU-second (less on a busy machine).
    assert 0 < rate <= 21


def test_calibrate_refuses_nonsense(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["containers", "calibrate", "--headroom", "1.5"]) == 2
    assert main(["containers", "calibrate", "--compute-per-cpu", "0"]) == 2


def test_rate_arithmetic() -> None:
    result = Calibration(
        backend="docker",
        sandboxes=2,
        cpus_each=1.0,
        seconds=3.0,
        cpu_seconds=5.7,
        wall_seconds=3.0,
        failures=0,
        compute_per_cpu=10.0,
        headroom=0.1,
        memory_limit_bytes=2 * 2**30,
        memory_per_sandbox=128 * 2**20,
    )
    assert result.sustained_cpus == pytest.approx(1.9)
    assert result.total_rate == 17.1
    assert result.max_sandboxes_by_memory == 16
    assert "total_rate = 17.1" in result.report()
    assert cpus_for_rate(5.0) == 0.5 and cpus_for_rate(5.0, compute_per_cpu=20) == 0.25
    assert compute_for_cpu_seconds(0.3) == pytest.approx(3.0)


def test_containers_never_imports_the_ui() -> None:
    code = (
        "import sys, containers.cli, containers.choose, containers.stats, containers.calibrate, "
        "containers.docker_backend, containers.subprocess_backend, containers.images\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('textual', 'tui')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
