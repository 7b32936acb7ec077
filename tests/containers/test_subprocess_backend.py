"""The subprocess backend's own promises: a bare environment, a private dir, nothing left behind."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from containers.procfs import process_tree
from containers.subprocess_backend import SubprocessSandbox, pick_python
from engine.sandbox import SandboxLimits

pytestmark = pytest.mark.anyio


async def test_environment_and_files_do_not_leak(
    make_sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ECOLOGY_TEST_SECRET", "hunter2")
    async with make_sandbox("subprocess") as sandbox:
        await sandbox.start("a", SandboxLimits())
        result = await sandbox.run(
            "a", "import os\n\ndef run():\n    return [dict(os.environ), os.getcwd()]\n", {}, 10
        )
        assert result.ok
        env, cwd = result.value
        assert "ECOLOGY_TEST_SECRET" not in env
        assert set(env) <= {"PATH", "LANG", "HOME", "TMPDIR", "LC_CTYPE", "MALLOC_ARENA_MAX"}
        assert Path(cwd).parent == sandbox.base_dir
        assert oct(os.stat(cwd).st_mode & 0o777) == "0o700"
        await sandbox.stop("a")
        assert not Path(cwd).exists()
    assert not sandbox.base_dir.exists()


async def test_nothing_the_agent_started_outlives_its_sandbox(make_sandbox: Any) -> None:
    escape = (
        "import os, signal\n\ndef run():\n"
        "    r, w = os.pipe()\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        os.setsid()  # leaves the call's process group\n"
        "        grandchild = os.fork()\n"
        "        if grandchild == 0:\n"
        "            signal.pause()\n"
        "        os.write(w, str(grandchild).encode())\n"
        "        os._exit(0)\n"
        "    os.waitpid(pid, 0)\n"
        "    return int(os.read(r, 32))\n"
    )
    async with make_sandbox("subprocess") as sandbox:
        await sandbox.start("a", SandboxLimits())
        runner_pid = sandbox.stat_targets()[0].ident
        result = await sandbox.run("a", escape, {}, 10)
        assert result.ok, result
        escaped = result.value
        if sandbox.separate_users:
            # The runner owns its uid: after each call it kills whatever that uid still runs.
            assert _gone(escaped)
        else:
            # The runner is a subreaper: the escaped grandchild is still its descendant.
            assert escaped in process_tree(runner_pid)
        await sandbox.stop("a")
    assert _gone(escaped) and _gone(runner_pid)


def _gone(pid: int) -> bool:
    return not os.path.exists(f"/proc/{pid}") or _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


async def test_each_agent_gets_its_own_uid_as_root(make_sandbox: Any) -> None:
    if os.geteuid() != 0:
        pytest.skip("separate uids per agent need root")
    async with make_sandbox("subprocess") as sandbox:
        assert sandbox.separate_users
        await sandbox.start("a", SandboxLimits())
        await sandbox.start("b", SandboxLimits())
        who = "import os\n\ndef run():\n    return os.getuid()\n"
        a = (await sandbox.run("a", who, {}, 10)).value
        b = (await sandbox.run("b", who, {}, 10)).value
        assert a != b and 0 not in (a, b)
        # A replacement keeps the agent's uid (it first kills whatever that uid still runs).
        await sandbox.run("a", "def run():\n    while True:\n        pass\n", {}, 0.3)
        assert (await sandbox.run("a", who, {}, 10)).value == a


async def test_set_cpus_is_recorded(make_sandbox: Any) -> None:
    async with make_sandbox("subprocess") as sandbox:
        await sandbox.start("a", SandboxLimits(cpus=0.5))
        await sandbox.set_cpus("a", 2.0)
        assert sandbox.limits("a").cpus == 2.0
        with pytest.raises(ValueError):
            await sandbox.set_cpus("a", -1)
        await sandbox.set_cpus("a", 0)
        assert sandbox.limits("a").cpus == 0
        with pytest.raises(KeyError):
            await sandbox.set_cpus("nobody", 1)
        described = sandbox.describe()
        assert "CPU quota" in described["cannot"]


def test_interpreter_is_reachable_by_agent_uids() -> None:
    assert pick_python(False)
    chosen = pick_python(True)
    if chosen:
        assert os.access(chosen, os.X_OK)


def test_separate_users_need_root() -> None:
    if os.geteuid() == 0:
        assert SubprocessSandbox(separate_users=True).separate_users
    else:
        with pytest.raises(RuntimeError):
            SubprocessSandbox(separate_users=True)
