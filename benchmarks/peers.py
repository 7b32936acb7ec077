"""The peer simulators the benchmarks measure against, in their own virtualenv.

Mesa and SimPy are baselines, not project dependencies: they live in
`benchmarks/.venv-peers`, created from PyPI on first use, and each measurement runs a
script in that interpreter so the peers and the engine share the machine in one run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEERS_VENV = HERE / ".venv-peers"
PEERS = ("mesa>=3.3,<4", "simpy>=4.1,<5")


def peers_python() -> Path | None:
    """The baseline interpreter, with Mesa and SimPy installed (made on first use)."""
    python = PEERS_VENV / "bin" / "python"
    if not python.exists():
        print("creating benchmarks/.venv-peers with Mesa and SimPy (one time) ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True)
    probe = subprocess.run([str(python), "-c", "import mesa, simpy"], capture_output=True)
    if probe.returncode != 0:
        r = subprocess.run([str(python), "-m", "pip", "install", "-q", *PEERS], capture_output=True, text=True)
        if r.returncode != 0:
            print(f"could not install the peers: {r.stderr[-500:]}", file=sys.stderr)
            return None
    return python


def run_peer(script: str, *args: object) -> dict | None:
    """Run `script` in the peers' interpreter; it prints one JSON object."""
    python = peers_python()
    if python is None:
        return None
    r = subprocess.run([str(python), "-c", script, *map(str, args)], capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stderr[-1500:], file=sys.stderr)
        return None
    return json.loads(r.stdout.strip().splitlines()[-1])
