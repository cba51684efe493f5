"""The LLM endpoint layer against a real local server over HTTP, with faults injected."""

from __future__ import annotations

import asyncio
import math
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from app.platform.config import LLMEndpoint
from app.platform.errors import InvalidInput
from app.platform.llm.chat import ChatRequest, request_hash
from app.platform.llm.endpoints import get_endpoint
from app.platform.llm.rate_limit import RateLimiter
from app.platform.llm.retry import retry_after_seconds
from tests.llm_server import DEFAULT_REPLY, LLMServer
from tests.scoring.conftest import (
    PRICE_IN,
    PRICE_OUT,
    ask,
    complete_all,
    complete_one,
    configure_endpoint,
)

DB = pytest.mark.usefixtures("committed")


@DB
def test_an_answer_comes_with_its_tokens_and_cost(
    llm_endpoint: LLMEndpoint, llm_server: LLMServer
) -> None:
    request = ask("Instruction: add 2 and 2. Response: 4.")
    result, stats = complete_one(llm_endpoint, request)
    assert result.text == DEFAULT_REPLY and not result.failed and not result.cached
    assert result.finish_reason == "stop"
    prompt_chars = sum(len(content) for _, content in request.messages)
    assert result.prompt_tokens == math.ceil(prompt_chars / 4)
    assert result.completion_tokens == math.ceil(len(DEFAULT_REPLY) / 4)
    expected = result.prompt_tokens / 1000 * PRICE_IN + result.completion_tokens / 1000 * PRICE_OUT
    assert result.cost == pytest.approx(expected)
    assert result.latency_ms is not None and result.latency_ms > 0
    assert stats.as_dict() == {
        "sent": 1,
        "cache_hits": 0,
        "retries": 0,
        "failed": 0,
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
        "cost": pytest.approx(expected),
    }
    assert llm_server.stats()["total"] == 1


@DB
@pytest.mark.parametrize(
    ("directive", "wait_s"), [("retry_after=1", 1.0), ("retry_after_ms=400", 0.4)]
)
def test_a_429_is_retried_no_earlier_than_retry_after(
    llm_endpoint: LLMEndpoint, llm_server: LLMServer, directive: str, wait_s: float
) -> None:
    prompt = f"[[status:429:times=1:{directive}]] Rate this."
    result, stats = complete_one(llm_endpoint, ask(prompt))
    assert result.text == DEFAULT_REPLY
    first, second = llm_server.times(prompt)
    assert second - first >= wait_s
    assert stats.retries == 1 and stats.sent == 1


@DB
def test_server_errors_are_retried_until_an_answer(
    llm_endpoint: LLMEndpoint, llm_server: LLMServer
) -> None:
    prompt = "[[status:500:times=2]] Rate this."
    result, stats = complete_one(llm_endpoint, ask(prompt))
    assert result.text == DEFAULT_REPLY
    assert llm_server.count(prompt) == 3 and stats.retries == 2


@DB
def test_a_server_that_keeps_failing_is_given_up_after_max_attempts(
    llm_endpoint: LLMEndpoint, llm_server: LLMServer
) -> None:
    prompt = "[[status:500:times=99]] Rate this."
    result, stats = complete_one(llm_endpoint, ask(prompt))
    assert result.failed and result.text is None
    assert result.error == "endpoint 'default': HTTP 500 after 3 attempts"
    assert llm_server.count(prompt) == 3
    assert stats.failed == 1 and stats.cost == 0


@DB
def test_a_server_that_never_answers_times_out(
    llm_endpoint: LLMEndpoint, llm_server: LLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure_endpoint(monkeypatch, "default", timeout_s=0.3, max_attempts=2)
    prompt = "[[hang]] Rate this."
    started = time.monotonic()
    result, _ = complete_one(get_endpoint("default"), ask(prompt))
    assert time.monotonic() - started < 2 * 0.3 + 1.0
    assert result.error == "endpoint 'default': timed out (0.3 s) after 2 attempts"
    assert llm_server.count(prompt) == 2


@DB
def test_a_retry_after_beyond_the_limit_fails_at_once(
    llm_endpoint: LLMEndpoint, llm_server: LLMServer
) -> None:
    prompt = "[[status:429:times=9:retry_after=60]] Rate this."
    started = time.monotonic()
    result, stats = complete_one(llm_endpoint, ask(prompt))
    assert time.monotonic() - started < 1.0
    assert result.failed and "HTTP 429" in (result.error or "") and "60" in (result.error or "")
    assert llm_server.count(prompt) == 1 and stats.retries == 0


@DB
def test_a_client_error_is_not_retried(llm_endpoint: LLMEndpoint, llm_server: LLMServer) -> None:
    prompt = "[[status:400:times=9]] Rate this."
    result, _ = complete_one(llm_endpoint, ask(prompt))
    assert result.error == "endpoint 'default': HTTP 400: injected HTTP 400"
    assert llm_server.count(prompt) == 1


@DB
def test_a_server_that_is_down_fails_after_max_attempts(
    llm_endpoint: LLMEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    configure_endpoint(monkeypatch, "default", base_url=f"http://127.0.0.1:{port}/v1")
    result, stats = complete_one(get_endpoint("default"), ask("Rate this."))
    assert (result.error or "").startswith("endpoint 'default': connection error")
    assert (result.error or "").endswith("after 3 attempts")
    assert stats.retries == 2


@DB
@pytest.mark.parametrize(
    ("prompt", "text", "finish"),
    [
        ("[[reply:The answer is helpful but vague.]]", "The answer is helpful but vague.", "stop"),
        ("[[reply:11/10]]", "11/10", "stop"),
        (
            "[[reply:I'm sorry, but I can't help with that.]]",
            "I'm sorry, but I can't help with that.",
            "stop",
        ),
        ("[[reply:4]] [[finish:length]]", "4", "length"),
        ("[[reply:3.5\\nMostly right.]]", "3.5\nMostly right.", "stop"),
    ],
)
def test_odd_answers_come_back_as_text(
    llm_endpoint: LLMEndpoint, prompt: str, text: str, finish: str
) -> None:
    result, _ = complete_one(llm_endpoint, ask(prompt))
    assert (result.text, result.finish_reason, result.error) == (text, finish, None)


@DB
def test_max_tokens_truncates_the_answer(llm_endpoint: LLMEndpoint) -> None:
    result, _ = complete_one(llm_endpoint, ask("Rate this.", max_tokens=2))
    assert result.text == DEFAULT_REPLY[:8]
    assert result.finish_reason == "length" and result.completion_tokens == 2


@DB
def test_top_logprobs_of_the_first_position(llm_endpoint: LLMEndpoint) -> None:
    default, _ = complete_one(llm_endpoint, ask("Score this.", max_tokens=1, top_logprobs=6))
    assert default.text == "5"
    assert default.top_logprobs == {
        "5": -0.1,
        "6": -2.5,
        "4": -3.0,
        "3": -4.5,
        "The": -5.0,
        "2": -6.0,
    }
    exact = ask("[[logprobs:1=-2.0,2=-1.5,3=-3.0]] Score this.", max_tokens=1, top_logprobs=5)
    result, _ = complete_one(llm_endpoint, exact)
    assert result.text == "2"
    assert result.top_logprobs == {"1": -2.0, "2": -1.5, "3": -3.0}
    plain, _ = complete_one(llm_endpoint, ask("Score this."))
    assert plain.top_logprobs is None


@DB
def test_rpm_spaces_the_sends(
    llm_endpoint: LLMEndpoint, llm_server: LLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure_endpoint(monkeypatch, "default", rpm=600)
    prompts = [f"Rate answer {i}." for i in range(5)]
    complete_all(get_endpoint("default"), [ask(p) for p in prompts])
    assert all(len(llm_server.times(p)) == 1 for p in prompts)


def test_the_rate_limiter_hands_out_evenly_spaced_slots(monkeypatch: pytest.MonkeyPatch) -> None:
    # The slots, not arrival times on a busy machine: no clock in the assertion.
    waits: list[float] = []
    real_sleep = asyncio.sleep

    async def record(seconds: float) -> None:
        # asyncio.sleep is patched for the whole process: another test's server thread
        # (uvicorn's loop) keeps sleeping for real and is not counted.
        if threading.current_thread() is not threading.main_thread():
            await real_sleep(seconds)
            return
        waits.append(seconds)

    monkeypatch.setattr("app.platform.llm.rate_limit.time.monotonic", lambda: 100.0)
    monkeypatch.setattr("app.platform.llm.rate_limit.asyncio.sleep", record)
    limiter = RateLimiter(rpm=600)
    for _ in range(5):
        asyncio.run(limiter.wait())
    assert waits == pytest.approx([0.1, 0.2, 0.3, 0.4])


def test_retry_after_is_read_in_every_form() -> None:
    assert retry_after_seconds({"retry-after": "7"}) == 7.0
    assert retry_after_seconds({"retry-after-ms": "250"}) == 0.25
    assert retry_after_seconds({"retry-after": "1", "retry-after-ms": "2500"}) == 2.5
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 28 <= (retry_after_seconds({"retry-after": later}) or 0) <= 30
    earlier = format_datetime(datetime.now(UTC) - timedelta(seconds=30), usegmt=True)
    assert retry_after_seconds({"retry-after": earlier}) == 0.0
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None


def test_an_unknown_endpoint_says_what_to_set(llm_endpoint: LLMEndpoint) -> None:
    with pytest.raises(
        InvalidInput, match=r"no LLM endpoint named 'judge': set SIFT_LLM__JUDGE__BASE_URL"
    ):
        get_endpoint("judge")
    assert get_endpoint("DEFAULT").model == "test-model"


def test_an_endpoint_without_a_model_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    configure_endpoint(monkeypatch, "bare", base_url="http://127.0.0.1:9/v1")
    with pytest.raises(InvalidInput, match="SIFT_LLM__BARE__MODEL"):
        get_endpoint("bare")


def test_the_request_hash_covers_what_decides_the_answer() -> None:
    endpoint = LLMEndpoint(base_url="http://Host:8000/v1/", model="m")
    request = ChatRequest((("user", "hi"),))
    same = LLMEndpoint(base_url="http://host:8000/v1", model="m", api_key="secret")
    assert request_hash(endpoint, request) == request_hash(same, request)
    assert len(request_hash(endpoint, request)) == 64
    others = [
        request_hash(endpoint.model_copy(update={"model": "n"}), request),
        request_hash(endpoint.model_copy(update={"base_url": "http://other/v1"}), request),
        request_hash(endpoint, ChatRequest((("user", "hi!"),))),
        request_hash(endpoint, ChatRequest((("system", "hi"),))),
        request_hash(endpoint, ChatRequest((("user", "hi"),), temperature=0.7)),
        request_hash(endpoint, ChatRequest((("user", "hi"),), max_tokens=5)),
        request_hash(endpoint, ChatRequest((("user", "hi"),), top_logprobs=5)),
    ]
    assert len({request_hash(endpoint, request), *others}) == 8
