"""Fixtures for the economy tests (issue 3).

They reuse the engine tests' helpers (`tests/engine/ecotest.py`: the scriptable test brain,
world builders, `run_world`, `state`), so that directory goes on the import path here too.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ENGINE_TESTS = str(Path(__file__).resolve().parent.parent / "engine")
if ENGINE_TESTS not in sys.path:
    sys.path.insert(0, ENGINE_TESTS)

import ecotest  # noqa: E402  (found through the path set just above)


@pytest.fixture(autouse=True)
def _fresh_scripts():
    """Each test starts with no agent scripts and no recorded turns."""
    ecotest.reset()
    yield
    ecotest.reset()
