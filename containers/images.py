"""The agent image: its name, whether it is present and current, and how to build it.

`containers/images/Dockerfile.agent` takes its base as a build arg: python:3.11-slim with
internet access, or an offline base made by debootstrap from the machine's Debian mirror.
All functions here block (docker SDK, subprocesses): call them from a thread or a CLI.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
import tempfile
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

log = logging.getLogger(__name__)

AGENT_IMAGE = "ecology-agent:latest"
OFFLINE_BASE = "ecology-agent-base:bookworm"
ONLINE_BASE = "python:3.11-slim"
DOCKERFILE = "Dockerfile.agent"
SHA_LABEL = "ecology.dockerfile.sha256"
DEFAULT_MIRROR = "http://deb.debian.org/debian"

ImageState = Literal["missing", "stale", "current"]


def images_dir() -> Path:
    return Path(str(resources.files("containers").joinpath("images")))


@cache
def dockerfile_sha256() -> str:
    """Which Dockerfile an image was built from (the hash .ci/docker-setup.sh labels it with)."""
    return hashlib.sha256((images_dir() / DOCKERFILE).read_bytes()).hexdigest()


def image_state(client: Any, image: str = AGENT_IMAGE) -> ImageState:
    """Whether the agent image exists and was built from the current Dockerfile."""
    import docker.errors

    try:
        found = client.images.get(image)
    except docker.errors.ImageNotFound:
        return "missing"
    labels = (found.attrs.get("Config") or {}).get("Labels") or {}
    return "current" if labels.get(SHA_LABEL) == dockerfile_sha256() else "stale"


def has_image(client: Any, image: str) -> bool:
    import docker.errors

    try:
        client.images.get(image)
        return True
    except docker.errors.ImageNotFound:
        return False


def build_agent_image(client: Any, base: str | None = None, tag: str = AGENT_IMAGE) -> str:
    """Build the agent image FROM `base` (default: the offline base if present, else
    python:3.11-slim, which the daemon pulls if it can). Returns the base used."""
    if base is None:
        base = OFFLINE_BASE if has_image(client, OFFLINE_BASE) else ONLINE_BASE
    client.images.build(
        path=str(images_dir()),
        dockerfile=DOCKERFILE,
        buildargs={"BASE": base},
        tag=tag,
        labels={SHA_LABEL: dockerfile_sha256()},
        network_mode="none",  # nothing in the Dockerfile needs a network
        rm=True,
        forcerm=True,
    )
    return base


def debian_mirror(apt_dir: str = "/etc/apt") -> str:
    """The Debian mirror this machine's apt is configured with (deb822 or one-line sources)."""
    root = Path(apt_dir)
    for path in sorted((root / "sources.list.d").glob("*.sources")):
        try:
            text = path.read_text()
        except OSError:
            continue
        for stanza in re.split(r"\n\s*\n", text):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                key, sep, value = line.partition(":")
                if sep and not line.startswith((" ", "#")):
                    fields[key.strip().lower()] = value.strip()
            if fields.get("enabled", "yes").lower() == "no":
                continue
            if "bookworm" in fields.get("suites", "").split() and fields.get("uris"):
                return fields["uris"].split()[0]
    for path in [root / "sources.list", *sorted((root / "sources.list.d").glob("*.list"))]:
        try:
            lines = path.read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            words = line.split("#", 1)[0].split()
            if not words or words[0] != "deb":
                continue
            words = words[1:]
            if words and words[0].startswith("["):
                while words and not words[0].endswith("]"):
                    words = words[1:]
                words = words[1:]
            if len(words) >= 2 and words[1] == "bookworm":
                return words[0]
    return DEFAULT_MIRROR


def build_offline_base(client: Any, mirror: str | None = None, tag: str = OFFLINE_BASE) -> str:
    """debootstrap a minimal bookworm with Python 3.11 and import it as `tag` (needs root and
    debootstrap; takes about a minute). Returns the mirror used."""
    if shutil.which("debootstrap") is None:
        raise RuntimeError("debootstrap is not installed (apt-get install debootstrap)")
    if os.geteuid() != 0:
        raise RuntimeError("debootstrap needs root")
    mirror = mirror or debian_mirror()
    repository, _, version = tag.rpartition(":")
    if not repository:
        repository, version = tag, "latest"
    with tempfile.TemporaryDirectory(prefix="ecology-rootfs-", dir="/var/tmp") as rootfs:
        subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                # python3-minimal has no json or ctypes; libpython3.11-stdlib has the rest.
                "--include=python3-minimal,libpython3.11-stdlib",
                "bookworm",
                rootfs,
                mirror,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
        assert tar.stdout is not None
        try:
            client.api.import_image_from_stream(tar.stdout, repository=repository, tag=version)
        finally:
            tar.stdout.close()
            if tar.wait() != 0:
                raise RuntimeError("tar of the debootstrap root failed")
    return mirror
