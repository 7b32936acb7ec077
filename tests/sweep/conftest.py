"""Fixtures for the sweep tests."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from sweeptest import SMALL_SWEEP


@pytest.fixture
def small_sweep(tmp_path: Path) -> Path:
    path = tmp_path / "small.toml"
    path.write_text(SMALL_SWEEP, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def straight(tmp_path_factory) -> Path:
    """The small sweep run straight through on the local pool (two workers): the table the
    other ways of running it must reproduce."""
    from engine.sweep import load_sweep, run_sweep
    from rich.console import Console

    root = tmp_path_factory.mktemp("straight")
    path = root / "small.toml"
    path.write_text(SMALL_SWEEP, encoding="utf-8")
    result = run_sweep(load_sweep(path), root / "out", workers=2, console=Console(file=io.StringIO()))
    assert result.ran == 12 and not result.failed
    return root / "out"
