"""Choosing the sandbox: Docker when a daemon answers and the image exists, else bubblewrap,
else (as root) subprocesses with a uid per agent, else none: code is refused, with a reason
that says what to install. Always with a sentence saying which and why. (Without root, see
test_unprivileged.py, which runs the real command line as an ordinary user.)"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from containers import choose
from containers.bwrap_backend import BwrapSandbox
from containers.choose import INSTALL, REFUSED, choose_sandbox
from containers.docker_backend import DockerSandbox
from containers.subprocess_backend import SubprocessSandbox

pytestmark = pytest.mark.anyio


@pytest.fixture
def no_daemon(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> str:
    address = f"unix://{tmp_path}/no-docker.sock"
    monkeypatch.setenv("DOCKER_HOST", address)
    monkeypatch.delenv("ECOLOGY_SANDBOX", raising=False)
    monkeypatch.delenv("ECOLOGY_UNSAFE_SANDBOX", raising=False)
    return address


@pytest.fixture
def no_bwrap(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))  # bwrap is found on PATH


@pytest.mark.bwrap
async def test_without_a_daemon_bubblewrap_and_why(no_daemon: str, bwrap_path: str, world_id: str) -> None:
    choice = await choose_sandbox(world_id)
    try:
        assert isinstance(choice.sandbox, BwrapSandbox)
        assert choice.reason.startswith("bwrap sandbox: no Docker daemon at " + no_daemon)
        assert "enforces" in choice.reason and "namespaces" in choice.reason
    finally:
        await choice.sandbox.close()


async def test_without_a_daemon_or_bwrap_root_gets_a_uid_per_agent(
    no_daemon: str, no_bwrap: None, world_id: str
) -> None:
    if os.geteuid() != 0:
        pytest.skip("as root only; an ordinary user is refused (test_unprivileged.py)")
    choice = await choose_sandbox(world_id)
    try:
        assert isinstance(choice.sandbox, SubprocessSandbox) and choice.sandbox.separate_users
        assert choice.reason.startswith("subprocess sandbox: no Docker daemon at " + no_daemon)
        assert "bubblewrap (bwrap) is not installed; running as root" in choice.reason
        assert "UNSAFE" not in choice.reason
    finally:
        await choice.sandbox.close()


async def test_an_ordinary_user_without_a_daemon_or_bwrap_gets_no_sandbox(
    no_daemon: str, no_bwrap: None, world_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(choose.os, "geteuid", lambda: 4242)  # the decision only; the real
    choice = await choose_sandbox(world_id)                   # user is test_unprivileged.py
    assert choice.sandbox is None
    assert choice.reason.startswith(REFUSED) and choice.reason.endswith(INSTALL)
    assert no_daemon in choice.reason and "bubblewrap (bwrap) is not installed" in choice.reason


async def test_subprocess_without_root_needs_unsafe(
    no_daemon: str, world_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(choose.os, "geteuid", lambda: 4242)
    with pytest.raises(RuntimeError, match="--unsafe-sandbox"):
        await choose_sandbox(world_id, prefer="subprocess")
    choice = await choose_sandbox(world_id, prefer="subprocess", unsafe=True)
    await choice.sandbox.close()
    assert isinstance(choice.sandbox, SubprocessSandbox)
    monkeypatch.setenv("ECOLOGY_UNSAFE_SANDBOX", "1")
    choice = await choose_sandbox(world_id, prefer="subprocess")
    await choice.sandbox.close()
    assert isinstance(choice.sandbox, SubprocessSandbox)


async def test_forcing_docker_or_bwrap_that_cannot_run_says_why(
    no_daemon: str, no_bwrap: None, world_id: str
) -> None:
    with pytest.raises(RuntimeError, match="no Docker daemon"):
        await choose_sandbox(world_id, prefer="docker")
    with pytest.raises(RuntimeError, match="bubblewrap .* is not installed"):
        await choose_sandbox(world_id, prefer="bwrap")


async def test_bwrap_that_cannot_make_a_sandbox_says_what_it_said(
    no_daemon: str, world_id: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Where an agent's uid can run it (as root bwrap runs as one): not under /tmp/pytest-of-root.
    bin_dir = Path(tempfile.mkdtemp(prefix="ecology-fake-bwrap-", dir="/var/tmp"))
    try:
        bin_dir.chmod(0o755)
        fake = bin_dir / "bwrap"
        fake.write_text("#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\nexit 1\n")
        fake.chmod(0o755)
        monkeypatch.setenv("PATH", str(bin_dir))
        with pytest.raises(RuntimeError, match="setting up uid map: Permission denied"):
            await choose_sandbox(world_id, prefer="bwrap")
    finally:
        shutil.rmtree(bin_dir)


async def test_preference_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, world_id: str
) -> None:
    monkeypatch.setenv("ECOLOGY_SANDBOX", "subprocess")
    monkeypatch.setenv("ECOLOGY_UNSAFE_SANDBOX", "1")
    sandbox, reason = await choose_sandbox(world_id)
    await sandbox.close()
    assert isinstance(sandbox, SubprocessSandbox) and "ECOLOGY_SANDBOX" in reason
    monkeypatch.setenv("ECOLOGY_SANDBOX", "vm")
    with pytest.raises(ValueError):
        await choose_sandbox(world_id)


@pytest.mark.docker
async def test_docker_when_the_daemon_answers(
    docker_client: Any, monkeypatch: pytest.MonkeyPatch, world_id: str
) -> None:
    monkeypatch.delenv("ECOLOGY_SANDBOX", raising=False)
    choice = await choose_sandbox(world_id)
    try:
        assert isinstance(choice.sandbox, DockerSandbox)
        assert choice.reason.startswith("docker sandbox: Docker ")
        assert "ecology-agent:latest" in choice.reason
    finally:
        await choice.sandbox.close()


@pytest.mark.docker
@pytest.mark.bwrap
async def test_bwrap_when_the_image_is_missing(
    docker_client: Any, bwrap_path: str, monkeypatch: pytest.MonkeyPatch, world_id: str
) -> None:
    monkeypatch.delenv("ECOLOGY_SANDBOX", raising=False)
    choice = await choose_sandbox(world_id, image="ecology-agent:no-such-tag")
    await choice.sandbox.close()
    assert isinstance(choice.sandbox, BwrapSandbox)
    assert "ecology-agent:no-such-tag is missing" in choice.reason
    assert "ecology containers build" in choice.reason


def test_the_header_says_when_code_is_refused() -> None:
    from engine.config import load_scenario
    from engine.world import World
    from tui.widgets.header import SANDBOX_REFUSED, WorldHeader

    assert SANDBOX_REFUSED == REFUSED
    world = World(load_scenario("default"))
    header = WorldHeader()
    assert "sandbox none" in header.line_for(world, 0.0, 200).plain
    world.sandbox_reason = f"{REFUSED}: no Docker daemon; bubblewrap (bwrap) is not installed"
    assert "sandbox refused" in header.line_for(world, 0.0, 200).plain
