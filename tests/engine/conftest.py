"""Fixtures for the engine tests."""

from __future__ import annotations

import pytest

import ecotest


@pytest.fixture(autouse=True)
def _fresh_scripts():
    """Each test starts with no agent scripts and no recorded turns."""
    ecotest.reset()
    yield
    ecotest.reset()
