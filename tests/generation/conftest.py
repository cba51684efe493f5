"""Generation fixtures: the test LLM server as the priced `default` endpoint."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.platform.config import get_settings
from tests.endpoints import configure_endpoint
from tests.llm_server import LLMServer

PRICE_IN = 0.01
PRICE_OUT = 0.02


def point_default_at(llm: LLMServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make `default` the test server: priced, quick to give up."""
    configure_endpoint(
        monkeypatch,
        "default",
        base_url=llm.base_url,
        model="test-model",
        price_in=PRICE_IN,
        price_out=PRICE_OUT,
        timeout_s=5,
        max_attempts=2,
        concurrency=4,
    )


@pytest.fixture
def llm(monkeypatch: pytest.MonkeyPatch) -> Iterator[LLMServer]:
    """A fresh test server, configured as the `default` endpoint."""
    with LLMServer() as server:
        point_default_at(server, monkeypatch)
        yield server
    get_settings.cache_clear()
