"""The agent image: the Dockerfile's shape, the mirror an offline build uses, image freshness."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import pytest

from containers.images import (
    AGENT_IMAGE,
    DEFAULT_MIRROR,
    debian_mirror,
    dockerfile_sha256,
    image_state,
    images_dir,
)


def test_dockerfile_takes_its_base_as_a_build_arg() -> None:
    text = (images_dir() / "Dockerfile.agent").read_text()
    assert re.search(r"^ARG BASE=python:3\.11-slim$", text, re.M)
    assert re.search(r"^FROM \$\{BASE\}$", text, re.M)
    assert "USER 65534:65534" in text


def test_sha_matches_what_the_setup_script_computes() -> None:
    data = (images_dir() / "Dockerfile.agent").read_bytes()
    assert dockerfile_sha256() == hashlib.sha256(data).hexdigest()
    script = Path(__file__).parents[2] / ".ci" / "docker-setup.sh"
    if script.exists():
        assert "ecology.dockerfile.sha256" in script.read_text()


def test_app_image_and_compose_file_set_limits() -> None:
    compose = (images_dir() / "compose.yaml").read_text()
    for key in ("mem_limit:", "memswap_limit:", "cpus:", "pids_limit:", "Dockerfile.app"):
        assert key in compose
    app = (images_dir() / "Dockerfile.app").read_text()
    assert "ENTRYPOINT" in app and "ecology" in app


def test_mirror_from_deb822_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://off.example/debian\nSuites: bookworm\nEnabled: no\n"
        "Components: main\n\n"
        "Types: deb\n# a comment: with a colon\nURIs: http://mirror.example/debian\n"
        "Suites: bookworm bookworm-updates\nComponents: main\n\n"
        "Types: deb\nURIs: http://security.example/debian-security\n"
        "Suites: bookworm-security\nComponents: main\n"
    )
    assert debian_mirror(str(tmp_path)) == "http://mirror.example/debian"


def test_mirror_from_one_line_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text(
        "# deb http://commented.example/debian bookworm main\n"
        "deb http://security.example/debian-security bookworm-security main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main\n"
    )
    assert debian_mirror(str(tmp_path)) == "http://mirror.example/debian"
    assert debian_mirror(str(tmp_path / "nowhere")) == DEFAULT_MIRROR


@pytest.mark.docker
def test_agent_image_is_current(docker_client: Any) -> None:
    assert image_state(docker_client, AGENT_IMAGE) == "current"
    assert image_state(docker_client, "ecology-agent:no-such-tag") == "missing"
