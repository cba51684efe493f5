"""Generation fixtures: the test LLM server as the priced `default` endpoint."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.core.config import get_settings
from tests.llm_server import LLMServer

PRICE_IN = 0.01
PRICE_OUT = 0.02


def point_default_at(llm: LLMServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make `default` the test server: priced, quick to give up."""
    for name, value in {
        "BASE_URL": llm.base_url,
        "MODEL": "test-model",
        "PRICE_IN": str(PRICE_IN),
        "PRICE_OUT": str(PRICE_OUT),
        "TIMEOUT_S": "5",
        "MAX_ATTEMPTS": "2",
        "CONCURRENCY": "4",
    }.items():
        monkeypatch.setenv(f"SIFT_LLM__DEFAULT__{name}", value)
    get_settings.cache_clear()


@pytest.fixture
def llm(monkeypatch: pytest.MonkeyPatch) -> Iterator[LLMServer]:
    """A fresh test server, configured as the `default` endpoint."""
    with LLMServer() as server:
        point_default_at(server, monkeypatch)
        yield server
    get_settings.cache_clear()
