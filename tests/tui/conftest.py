"""Fixtures for the app's tests: a seeded demo world stopped at a fixed instant."""

from __future__ import annotations

import pytest
from tuikit import fresh_world, make_app


@pytest.fixture
def world():
    return fresh_world()


@pytest.fixture
def app(world):
    return make_app(world)


@pytest.fixture(autouse=True)
def _quicker_idle(monkeypatch):
    """Pilot waits for the process to go idle by sleeping in 20 ms steps until a step used
    under 1 ms of CPU. The app here is small and its engine stopped, so 5 ms steps tell
    idle just as well and keep the suite well under its time budget."""
    import textual._wait as wait

    monkeypatch.setattr(wait, "SLEEP_GRANULARITY", 0.005)
    monkeypatch.setattr(wait, "SLEEP_IDLE", 0.00025)
