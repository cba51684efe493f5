"""Scoring fixtures: a real OpenAI-compatible server over HTTP, and an endpoint aimed at it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.orm import Session

from app.platform.config import LLMEndpoint, get_settings
from app.platform.db import transaction
from app.platform.llm.chat import CallStats, ChatRequest, ChatResult
from app.platform.llm.client import LLMClient
from app.platform.llm.endpoints import get_endpoint
from tests.endpoints import configure_endpoint
from tests.llm_server import LLMServer

PRICE_IN = 0.001
PRICE_OUT = 0.002


@pytest.fixture(scope="session")
def _shared_llm_server() -> Iterator[LLMServer]:
    with LLMServer() as server:
        yield server


@pytest.fixture
def llm_server(_shared_llm_server: LLMServer) -> LLMServer:
    """The test LLM server (served from a thread), with nothing seen yet.

    One server serves the whole session, reset for each test: stopping uvicorn takes 0.1 s.
    """
    _shared_llm_server.reset()
    return _shared_llm_server


@pytest.fixture
def llm_endpoint(llm_server: LLMServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[LLMEndpoint]:
    """The endpoint `default`, priced, with short timeouts, on the test server."""
    get_settings.cache_clear()
    configure_endpoint(
        monkeypatch,
        "default",
        base_url=llm_server.base_url,
        model="test-model",
        price_in=PRICE_IN,
        price_out=PRICE_OUT,
        timeout_s=2,
        max_attempts=3,
        max_retry_wait_s=5,
    )
    yield get_endpoint("default")
    get_settings.cache_clear()


def ask(prompt: str, **sampling: Any) -> ChatRequest:
    """A rating-style request whose last user message is `prompt`."""
    messages = [
        {"role": "system", "content": "Rate the answer on a scale of 0 to 5."},
        {"role": "user", "content": prompt},
    ]
    return ChatRequest.of(messages, **sampling)


def client_for(session: Session, endpoint: LLMEndpoint, job_id: int | None = None) -> LLMClient:
    """A client of `default` with quick backoff, so that retry tests take milliseconds."""
    return LLMClient(
        "default", endpoint, session, job_id=job_id, backoff_base_s=0.02, backoff_cap_s=0.1
    )


async def gather_in(
    session: Session, endpoint: LLMEndpoint, requests: list[ChatRequest], job_id: int | None
) -> tuple[list[ChatResult | BaseException], CallStats]:
    """Every request at once through one client; exceptions come back in place."""
    async with client_for(session, endpoint, job_id) as client:
        results = await asyncio.gather(
            *(client.complete(r) for r in requests), return_exceptions=True
        )
    return list(results), client.stats


def complete_all(
    endpoint: LLMEndpoint, requests: list[ChatRequest], job_id: int | None = None
) -> tuple[list[ChatResult], CallStats]:
    """Send the requests concurrently through one client, as one task's committed unit of work."""
    with transaction() as session:
        results, stats = asyncio.run(gather_in(session, endpoint, requests, job_id))
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return [r for r in results if isinstance(r, ChatResult)], stats


def complete_one(endpoint: LLMEndpoint, request: ChatRequest) -> tuple[ChatResult, CallStats]:
    """One request through a fresh client."""
    [result], stats = complete_all(endpoint, [request])
    return result, stats
