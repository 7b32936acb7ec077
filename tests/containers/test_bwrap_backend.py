"""The bubblewrap backend's own promises: what a sandbox sees of the host (read-only /usr, a
private tmpfs of its size, no home, no host processes, no network, a bare environment), a uid
of its own per agent when the app is root, and nothing left once it stops."""

from __future__ import annotations

import os
from typing import Any

import pytest

from containers.procfs import process_tree, processes_of_uid
from containers.stats import StatsMonitor
from engine.sandbox import SandboxLimits

pytestmark = [pytest.mark.anyio, pytest.mark.bwrap]

LOOK_AROUND = """
import os, socket

def run():
    def can_write(path):
        try:
            with open(path, "w") as f:
                f.write("x")
            os.unlink(path)
            return True
        except OSError as exc:
            return exc.strerror
    return {
        "root": sorted(os.listdir("/")),
        "proc": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
        "uid": os.getuid(), "pid": os.getpid(), "ppid": os.getppid(),
        "env": dict(os.environ), "cwd": os.getcwd(), "host": socket.gethostname(),
        "interfaces": [name for _, name in socket.if_nameindex()],
        "write": {p: can_write(p) for p in ("/x", "/usr/x", "/dev/x", "/etc/x", "/tmp/x", "/dev/shm/x")},
    }
"""

FILL = """
def run(path, mib):
    written = 0
    try:
        with open(path, "wb") as f:
            for _ in range(mib):
                f.write(b"x" * (1 << 20))
                f.flush()
                written += 1
    except OSError as exc:
        return [written, exc.strerror]
    return [written, None]
"""


@pytest.fixture
async def bwrap(make_sandbox: Any) -> Any:
    sandbox = make_sandbox("bwrap")
    async with sandbox:
        yield sandbox


async def test_what_a_sandbox_sees(bwrap: Any) -> None:
    await bwrap.start("a", SandboxLimits())
    seen = await bwrap.run("a", LOOK_AROUND, {}, 10)
    assert seen.ok, seen
    view = seen.value
    assert set(view["root"]) <= {"bin", "dev", "etc", "lib", "lib32", "lib64", "libx32", "proc",
                                 "sbin", "tmp", "usr"}
    assert "home" not in view["root"] and "root" not in view["root"] and "var" not in view["root"]
    assert view["pid"] != 1 and view["ppid"] == 1 and view["proc"] == [1, view["pid"]]
    assert view["uid"] == 65534 and view["host"] == "sandbox" and view["interfaces"] == ["lo"]
    assert set(view["env"]) <= {"PATH", "LANG", "HOME", "TMPDIR", "MALLOC_ARENA_MAX", "PWD"}
    assert view["cwd"] == "/tmp"
    writes = view["write"]
    assert writes["/tmp/x"] is True and writes["/dev/shm/x"] is True
    assert all("Read-only" in str(writes[p]) or "No such file" in str(writes[p])
               for p in ("/x", "/usr/x", "/dev/x", "/etc/x")), writes
    facts = bwrap.facts("a")
    assert facts["pid_namespace"] and facts["seccomp"] and not facts["dumpable"]


async def test_the_tmpfs_holds_its_size_and_keeps_files_between_calls(bwrap: Any) -> None:
    await bwrap.start("a", SandboxLimits(tmpfs_bytes=8 * 2**20))
    first = await bwrap.run("a", FILL, {"path": "/tmp/a", "mib": 6}, 10)
    assert first.ok and first.value == [6, None]
    second = await bwrap.run("a", FILL, {"path": "/tmp/b", "mib": 6}, 10)
    assert second.ok and second.value[0] < 3 and "No space left" in second.value[1], second
    shm = await bwrap.run("a", FILL, {"path": "/dev/shm/c", "mib": 9}, 10)
    assert shm.ok and shm.value[1] is not None, shm  # its own size, or the file size limit
    kept = await bwrap.run("a", "import os\n\ndef run():\n    return sorted(os.listdir('/tmp'))\n", {}, 10)
    assert kept.value == ["a", "b"]


async def test_a_uid_per_agent_as_root_and_nothing_left(bwrap: Any) -> None:
    await bwrap.start("a", SandboxLimits())
    await bwrap.start("b", SandboxLimits())
    assert (await bwrap.run("a", "def run():\n    return 1\n", {}, 10)).ok
    pids = {agent: int(bwrap.stat_targets()[i].ident) for i, agent in enumerate(bwrap.agents())}
    uids = {}
    for agent, pid in pids.items():
        with open(f"/proc/{pid}/status") as f:
            uids[agent] = int(next(line for line in f if line.startswith("Uid:")).split()[1])
    if os.geteuid() == 0:
        assert uids["a"] != uids["b"] and 0 not in uids.values()
    else:
        assert set(uids.values()) == {os.geteuid()}
    trees = {agent: process_tree(pid) for agent, pid in pids.items()}
    assert all(len(tree) >= 2 for tree in trees.values())  # bwrap, and the runner under it
    stats = await StatsMonitor(bwrap, None).sample()
    assert {s.agent_id for s in stats} == {"a", "b"} and all(s.memory_bytes > 0 for s in stats)
    await bwrap.stop("a")
    assert not any(os.path.exists(f"/proc/{p}") for p in trees["a"])
    if os.geteuid() == 0:
        assert processes_of_uid(uids["a"]) == []
    assert (await bwrap.run("b", "def run():\n    return 2\n", {}, 10)).value == 2


async def test_set_cpus_is_recorded_and_described(bwrap: Any) -> None:
    await bwrap.start("a", SandboxLimits(cpus=0.5))
    await bwrap.set_cpus("a", 2.0)
    assert bwrap.limits("a").cpus == 2.0
    described = bwrap.describe()
    assert "CPU quota" in described["cannot"] and "namespaces" in described["enforces"]
