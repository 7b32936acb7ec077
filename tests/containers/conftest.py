"""Fixtures for the containers tests: a real Docker daemon when one answers, real bubblewrap
when installed (CI installs it and sets ECOLOGY_REQUIRE_BWRAP=1, so there it must work), and
the subprocess backend."""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

# pytest's default (prepend) import mode puts tests/ on sys.path, where tests/containers and
# tests/engine look like namespace packages that shadow the real ones. The repository root on
# sys.path makes the real (regular) packages win. (`pythonpath = ["."]` in pytest's config
# does the same for every test package.)
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
for _name in ("containers", "engine"):
    if getattr(sys.modules.get(_name), "__file__", "") is None:
        del sys.modules[_name]  # a namespace stand-in imported before this ran

from containers.bwrap_backend import BwrapSandbox, bwrap_python, find_bwrap, probe  # noqa: E402
from containers.choose import probe_daemon_blocking  # noqa: E402
from containers.docker_backend import DockerSandbox, remove_world_containers  # noqa: E402
from containers.images import AGENT_IMAGE, build_agent_image, image_state  # noqa: E402
from containers.subprocess_backend import SubprocessSandbox  # noqa: E402
from engine.sandbox import SandboxIncident, SandboxStats  # noqa: E402

BACKENDS = [
    pytest.param("docker", marks=pytest.mark.docker, id="docker"),
    pytest.param("bwrap", marks=pytest.mark.bwrap, id="bwrap"),
    "subprocess",
]


def bwrap_or_skip() -> str:
    """The bwrap executable, once it made a real sandbox here; else skip, or fail in CI."""
    path = find_bwrap()
    problem = "bubblewrap is not installed" if path is None else probe(
        path, bwrap_python(), 4242 if os.geteuid() == 0 else None
    )
    if problem:
        if os.environ.get("ECOLOGY_REQUIRE_BWRAP") == "1":
            pytest.fail(f"ECOLOGY_REQUIRE_BWRAP=1 but {problem}")
        pytest.skip(f"{problem} (apt install bubblewrap)")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def bwrap_path() -> str:
    return bwrap_or_skip()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def docker_client() -> Any:
    """A client of a daemon that answers, with a current agent image; skip only if none answers."""
    probe = probe_daemon_blocking(timeout=3.0)
    if probe.client is None:
        pytest.skip(f"no Docker daemon at {probe.where}: {probe.detail}")
    client = probe.client
    if image_state(client, AGENT_IMAGE) != "current":
        # A daemon answers, so a missing image is a failure to fix, not a reason to skip.
        build_agent_image(client)
    yield client
    client.close()


@pytest.fixture
def world_id() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


class Recorder:
    """A Reporter that keeps what it was told."""

    def __init__(self) -> None:
        self.items: list[SandboxStats | SandboxIncident] = []

    def __call__(self, item: SandboxStats | SandboxIncident) -> None:
        self.items.append(item)

    @property
    def incidents(self) -> list[SandboxIncident]:
        return [i for i in self.items if isinstance(i, SandboxIncident)]

    @property
    def stats(self) -> list[SandboxStats]:
        return [i for i in self.items if isinstance(i, SandboxStats)]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def make_sandbox(request: pytest.FixtureRequest, world_id: str, recorder: Recorder) -> Any:
    """Build an unopened sandbox of the named backend reporting to `recorder`."""
    made: list[Any] = []

    def make(backend: str, **kwargs: Any) -> Any:
        if backend == "docker":
            client = request.getfixturevalue("docker_client")
            sandbox = DockerSandbox(world_id, recorder, client=client, owns_client=False, **kwargs)
        elif backend == "bwrap":
            sandbox = BwrapSandbox(recorder, bwrap=request.getfixturevalue("bwrap_path"), **kwargs)
        else:
            sandbox = SubprocessSandbox(recorder, **kwargs)
        made.append(sandbox)
        return sandbox

    yield make
    for sandbox in made:
        if isinstance(sandbox, DockerSandbox) and sandbox.client is not None:
            # Whatever a failing test left behind.
            remove_world_containers(sandbox.client, world_id)


@pytest.fixture(params=BACKENDS)
async def sandbox(request: pytest.FixtureRequest, make_sandbox: Any) -> Any:
    """An open sandbox of each backend (docker only where a daemon answers)."""
    sandbox = make_sandbox(request.param)
    async with sandbox:
        yield sandbox
