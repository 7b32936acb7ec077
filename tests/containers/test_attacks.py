"""Attacks an agent's code makes on its sandbox, on every backend, through the world's invoke
path with the app as root (tests/containers/attacks.py holds them and their judging; the
same catalogue runs as an unprivileged uid in test_unprivileged.py)."""

from __future__ import annotations

import os
import secrets
from dataclasses import asdict
from pathlib import Path
from typing import Any

import attacks  # tests/containers/attacks.py: on sys.path as this test's own directory
import pytest
from attacks import ATTACKS, Context, leftovers, problems

pytestmark = pytest.mark.anyio


async def open_backend(backend: str, world: Any, request: pytest.FixtureRequest) -> tuple[Any, str]:
    if backend == "docker":
        from containers.docker_backend import DockerSandbox

        client = request.getfixturevalue("docker_client")
        sandbox: Any = DockerSandbox(world.config.name, world.report_sandbox, client=client,
                                     owns_client=False)
    elif backend == "bwrap":
        from containers.bwrap_backend import BwrapSandbox

        sandbox = BwrapSandbox(world.report_sandbox, bwrap=request.getfixturevalue("bwrap_path"))
    else:
        from containers.subprocess_backend import SubprocessSandbox

        sandbox = SubprocessSandbox(world.report_sandbox)
    await sandbox.open()
    return sandbox, f"{backend} sandbox (attacks)"


@pytest.fixture
def context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Context:
    token = f"ecology-attack-{secrets.token_hex(6)}"
    secret = f"sk-ecology-{secrets.token_hex(12)}"
    monkeypatch.setenv("OPENAI_API_KEY", secret)  # the app's own environment holds a key
    home = tmp_path / "home"
    attacks.prepare_home(str(home), secret)
    project = tmp_path / "project"
    project.mkdir()
    ctx = Context(
        token=token, home=str(home), secret=secret, journal=str(project / "world.db"),
        app_pid=os.getpid(),
        outside_dirs=[str(home), str(project), "/tmp", "/var/tmp", "/dev/shm"],
    )
    yield ctx
    for leftover in attacks.files_named(token, ctx.outside_dirs):
        os.unlink(leftover)


@pytest.mark.parametrize("backend", [
    pytest.param("docker", marks=pytest.mark.docker),
    pytest.param("bwrap", marks=pytest.mark.bwrap),
    "subprocess",
])
async def test_every_attack_is_contained(
    backend: str, context: Context, request: pytest.FixtureRequest
) -> None:
    if backend == "subprocess" and os.geteuid() != 0:
        pytest.skip("without root the subprocess backend is the unsafe opt-in: see test_unprivileged.py")
    names = [a.name for a in ATTACKS]
    records, closed = await attacks.run_attacks(
        backend, lambda world: open_backend(backend, world, request), context, names
    )
    assert [r.attack for r in records] == names
    # Subprocesses as root have no mount namespace: /tmp and the like are writable by the
    # agent's uid while its sandbox lives, and swept when it stops (`leftovers` checks).
    shared = backend == "subprocess"
    found = {r.attack: problems(asdict(r), context, shared_dirs_writable=shared) for r in records}
    assert {name: p for name, p in found.items() if p} == {}
    assert leftovers(closed) == []
    if backend == "docker":
        client = request.getfixturevalue("docker_client")
        assert client.containers.list(all=True, filters={"label": f"ecology.world=attacks-{context.token[-8:]}"}) == []
