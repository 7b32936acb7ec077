"""The host's meter of a call, on real processes: CPU time of a process tree (what its
members reaped included), its memory with shared memory counted, the watchdog that says when
a tree is over its limit, and the fallbacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import anyio

from containers.meter import CgroupMeter, ProcessTreeMeter, QuotaMeter
from containers.procfs import kill_tree, process_tree, read_tree, tree_memory
from containers.stats import CgroupFiles

MiB = 2**20

# Forks a child that burns CPU, reaps it, then waits to be told to go: the burnt CPU is now
# in the parent's cutime, and must still count.
BURN_IN_A_CHILD = """
import os, sys, time
sys.stdout.write("ready\\n"); sys.stdout.flush()
sys.stdin.readline()
pid = os.fork()
if pid == 0:
    end = time.process_time() + 0.4
    while time.process_time() < end:
        pass
    os._exit(0)
os.waitpid(pid, 0)
sys.stdout.write("burnt\\n"); sys.stdout.flush()
sys.stdin.readline()
"""

HOLD_SHARED = """
import mmap, sys
m = mmap.mmap(-1, 96 << 20)
for i in range(0, len(m), 4096):
    m[i] = 1
sys.stdout.write("held\\n"); sys.stdout.flush()
sys.stdin.readline()
"""


def start(source: str) -> subprocess.Popen[str]:
    process = subprocess.Popen([sys.executable, "-c", source], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    process.stdout.readline()
    return process


def say(process: subprocess.Popen[str]) -> str:
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write("go\n")
    process.stdin.flush()
    return process.stdout.readline().strip()


def test_cpu_of_what_a_tree_reaped_is_counted() -> None:
    process = start(BURN_IN_A_CHILD)
    try:
        meter = ProcessTreeMeter(process.pid, 1 << 40)
        meter.begin()
        assert say(process) == "burnt"
        measure = meter.end(1.0)
        assert 0.38 <= measure.cpu_seconds <= 0.6, measure
        assert measure.source == "proc"
    finally:
        process.kill()
        process.wait()


def test_shared_memory_counts_and_the_watchdog_says_so() -> None:
    process = start(HOLD_SHARED)  # has touched its 96 MiB when it says so
    try:
        held = tree_memory(process_tree(process.pid), 1 << 40)
        assert held >= 96 * MiB  # shmem pages are in the tree's memory
        meter = ProcessTreeMeter(process.pid, 64 * MiB, interval=0.01)
        meter.begin()
        said: list[str] = []

        async def watch() -> None:
            with anyio.fail_after(5):
                await meter.watch(said.append)

        anyio.run(watch)
        assert len(said) == 1 and "over its 64 MiB memory limit" in said[0]
        assert meter.peak >= 96 * MiB
    finally:
        process.kill()
        process.wait()


def test_a_reused_pid_is_not_read_as_the_same_process() -> None:
    process = start(HOLD_SHARED)
    try:
        reading = read_tree(process.pid)
        assert reading is not None and reading.processes == 1
        assert read_tree(process.pid, reading.started) is not None
        assert read_tree(process.pid, reading.started + 1) is None
    finally:
        process.kill()
        process.wait()
    assert read_tree(process.pid) is None


def test_kill_tree_can_spare_the_root() -> None:
    # The child says it is there, then waits to be killed (it must outlive the test's checks).
    process = start(BURN_IN_A_CHILD.replace(
        "end = time.process_time() + 0.4",
        'sys.stdout.write("child\\n"); sys.stdout.flush(); time.sleep(60); end = 0'))
    try:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write("go\n")
        process.stdin.flush()
        assert process.stdout.readline().strip() == "child"
        child = process_tree(process.pid)[1]
        kill_tree(process.pid, spare_root=True)
        assert process.stdout is not None and process.stdout.readline().strip() == "burnt"
        assert process.poll() is None  # the root lives on
        assert not Path(f"/proc/{child}").exists() or child not in process_tree(process.pid)
    finally:
        process.kill()
        process.wait()


def test_quota_and_a_vanished_cgroup() -> None:
    assert QuotaMeter(0.5).end(2.0).cpu_seconds == 1.0
    assert QuotaMeter(0.5).end(float("nan")).cpu_seconds == 0.0
    gone = CgroupFiles(1, Path("/nonexistent/cpu"), Path("/nonexistent/mem"), Path("/nonexistent/pids"))
    meter = CgroupMeter(gone, QuotaMeter(0.25))
    meter.begin()
    measure = meter.end(4.0)
    assert measure.cpu_seconds == 1.0 and measure.source == "quota x wall"
