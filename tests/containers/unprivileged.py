"""An app run by an ordinary user, for tests that run as root: a virtualenv on /usr/bin/python3
in a world-readable place (the test's own interpreter and checkout may sit under /root, which
other uids cannot enter), holding copies of the project's packages and of the third-party
packages they import, and a way to run commands in it as that user with `setpriv`.

Built once per content (a hash of the sources) under /var/tmp; no network needed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from containers.procfs import processes_of_uid

ROOT = Path(__file__).resolve().parents[2]
UID = 4242  # a uid with nothing of its own on this machine
PACKAGES = ("engine", "containers", "tui")
ENTRY_MODULES = (
    "tui.cli", "engine.headless", "engine.export", "engine.journal", "engine.world",
    "containers", "containers.bwrap_backend", "containers.subprocess_backend",
    "anyio._backends._asyncio", "docker",
)
SYSTEM_PYTHON = "/usr/bin/python3"


@dataclass(frozen=True)
class Env:
    base: Path
    python: str  # the venv's interpreter

    def run(self, args: list[str], env: dict[str, str], cwd: Path, timeout: float
            ) -> subprocess.CompletedProcess[str]:
        """`args` as uid UID (no supplementary groups), with exactly `env`."""
        setpriv = shutil.which("setpriv") or "setpriv"  # found on our PATH, not theirs
        command = [setpriv, f"--reuid={UID}", f"--regid={UID}", "--clear-groups", *args]
        return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True,
                              timeout=timeout, check=False)

    def workdir(self, name: str) -> Path:
        """A fresh directory owned by the unprivileged uid (its home, journal, output)."""
        path = self.base / "work" / name
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        os.chown(path, UID, UID)
        path.chmod(0o700)
        return path


def missing() -> str | None:
    """What this machine lacks to run an app as another uid, or None."""
    if os.geteuid() != 0:
        return "running as another uid needs root"
    if not shutil.which("setpriv"):
        return "setpriv (util-linux) is missing"
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        return f"{SYSTEM_PYTHON} is missing"
    version = subprocess.run([SYSTEM_PYTHON, "-c", "import sys; print(sys.version_info[:2])"],
                             capture_output=True, text=True, check=False).stdout.strip()
    if version != str(sys.version_info[:2]):
        return f"{SYSTEM_PYTHON} is Python {version}, the tests run {sys.version_info[:2]}"
    return None


def _third_party_roots() -> list[Path]:
    """Top-level packages and modules from site-packages that the entry modules import."""
    probe = (
        "import importlib, json, sys\n"
        f"for name in {ENTRY_MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps([getattr(m, '__file__', None) for m in list(sys.modules.values())]))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    roots: set[Path] = set()
    for file in json.loads(done.stdout.strip().splitlines()[-1]):
        if not file or "site-packages" not in file:
            continue
        path = Path(file)
        parts = path.parts
        top = Path(*parts[: parts.index("site-packages") + 2])
        if top.name.split(".")[0] in PACKAGES or top.name.startswith("__editable__"):
            continue
        roots.add(top)
    return sorted(roots)


def _digest() -> str:
    h = hashlib.sha256(sys.version.encode())
    for package in PACKAGES:
        for file in sorted((ROOT / package).rglob("*.py")):
            h.update(str(file.relative_to(ROOT)).encode())
            h.update(file.read_bytes())
    h.update((ROOT / "tests" / "containers" / "attacks.py").read_bytes())
    return h.hexdigest()[:16]


def build() -> Env:
    """The unprivileged app's environment, built if this content has none yet."""
    base = Path("/var/tmp") / f"ecology-unprivileged-{_digest()}"
    python = str(base / "venv" / "bin" / "python")
    if (base / "ready").exists():
        return Env(base, python)
    if base.exists():  # a build that did not finish
        shutil.rmtree(base)
    # Builds from older sources (14 MB each) go after a day: other checkouts may use theirs.
    for stale in Path("/var/tmp").glob("ecology-unprivileged-*"):
        if time.time() - stale.stat().st_mtime > 86400:
            shutil.rmtree(stale, ignore_errors=True)
    base.mkdir(mode=0o755, parents=True)
    subprocess.run([SYSTEM_PYTHON, "-m", "venv", "--without-pip", str(base / "venv")], check=True)
    site = Path(subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip())
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for root in _third_party_roots():
        if root.is_dir():
            shutil.copytree(root, site / root.name, ignore=ignore)
        else:
            shutil.copy2(root, site / root.name)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, site / package, ignore=ignore)
    shutil.copy2(ROOT / "tests" / "containers" / "attacks.py", base / "attacks.py")
    (base / "work").mkdir(mode=0o755)
    for directory, dirs, files in os.walk(base):
        for name in dirs:
            os.chmod(os.path.join(directory, name), 0o755)
        for name in files:
            path = os.path.join(directory, name)
            if not os.path.islink(path):
                os.chmod(path, 0o755 if os.access(path, os.X_OK) else 0o644)
    (base / "ready").write_text("ok\n")
    return Env(base, python)


def processes_of(uid: int = UID) -> list[int]:
    return processes_of_uid(uid)
