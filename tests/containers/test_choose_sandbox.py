"""Choosing the sandbox: docker when a daemon answers and the image exists, else subprocesses,
always with a sentence saying why."""

from __future__ import annotations

from typing import Any

import pytest

from containers.choose import choose_sandbox
from containers.docker_backend import DockerSandbox
from containers.subprocess_backend import SubprocessSandbox

pytestmark = pytest.mark.anyio


@pytest.fixture
def no_daemon(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> str:
    address = f"unix://{tmp_path}/no-docker.sock"
    monkeypatch.setenv("DOCKER_HOST", address)
    monkeypatch.delenv("ECOLOGY_SANDBOX", raising=False)
    return address


async def test_without_a_daemon_subprocesses_and_why(no_daemon: str, world_id: str) -> None:
    choice = await choose_sandbox(world_id)
    try:
        assert isinstance(choice.sandbox, SubprocessSandbox)
        assert choice.reason.startswith("subprocess sandbox: no Docker daemon at " + no_daemon)
        assert "enforces" in choice.reason
    finally:
        await choice.sandbox.close()


async def test_forcing_docker_without_a_daemon_says_why(no_daemon: str, world_id: str) -> None:
    with pytest.raises(RuntimeError, match="no Docker daemon"):
        await choose_sandbox(world_id, prefer="docker")


async def test_preference_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, world_id: str
) -> None:
    monkeypatch.setenv("ECOLOGY_SANDBOX", "subprocess")
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
async def test_subprocesses_when_the_image_is_missing(
    docker_client: Any, monkeypatch: pytest.MonkeyPatch, world_id: str
) -> None:
    monkeypatch.delenv("ECOLOGY_SANDBOX", raising=False)
    choice = await choose_sandbox(world_id, image="ecology-agent:no-such-tag")
    await choice.sandbox.close()
    assert isinstance(choice.sandbox, SubprocessSandbox)
    assert "ecology-agent:no-such-tag is missing" in choice.reason
    assert "ecology containers build" in choice.reason
