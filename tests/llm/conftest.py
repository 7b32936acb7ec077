"""Fixtures for the LLM brain tests: a scripted OpenAI-compatible server on loopback."""

from __future__ import annotations

import pytest
from fake_llm import FakeLLM


@pytest.fixture
def server():
    fake = FakeLLM().start()
    try:
        yield fake
    finally:
        fake.close()
