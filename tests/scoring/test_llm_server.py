"""The test LLM server itself: its directives, its statistics, and its command line."""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from tests.llm_server import DEFAULT_REPLY, LLMServer, prompt_key


@pytest.fixture
def http(llm_server: LLMServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=llm_server.base_url.removesuffix("/v1"), timeout=5) as client:
        yield client


def chat(http: httpx.Client, prompt: str, **body: object) -> httpx.Response:
    messages = [{"role": "user", "content": prompt}]
    return http.post("/v1/chat/completions", json={"model": "m", "messages": messages, **body})


def test_a_status_directive_fails_the_first_requests_then_answers(http: httpx.Client) -> None:
    prompt = "[[status:429:times=2:retry_after=3]] Rate this."
    first, second, third = (chat(http, prompt) for _ in range(3))
    assert (first.status_code, second.status_code, third.status_code) == (429, 429, 200)
    assert first.headers["retry-after"] == "3"
    assert first.json()["error"]["code"] == "rate_limit_exceeded"
    answer = third.json()
    assert answer["choices"][0]["message"]["content"] == DEFAULT_REPLY
    prompt_tokens = math.ceil(len(prompt) / 4)
    assert answer["usage"] == {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": math.ceil(len(DEFAULT_REPLY) / 4),
        "total_tokens": prompt_tokens + math.ceil(len(DEFAULT_REPLY) / 4),
    }


def test_stats_count_and_time_each_prompt_until_reset(http: httpx.Client) -> None:
    chat(http, "one")
    chat(http, "one")
    chat(http, "two")
    stats = http.get("/_stats").json()
    assert stats["total"] == 3
    assert stats["by_prompt"] == {prompt_key("one"): 2, prompt_key("two"): 1}
    assert len(stats["times"][prompt_key("one")]) == 2
    http.post("/_reset")
    assert http.get("/_stats").json() == {"total": 0, "by_prompt": {}, "times": {}}


def test_logprobs_are_given_at_the_first_position(http: httpx.Client) -> None:
    body = chat(http, "[[logprobs:1=-1.0,2=-0.5]] Score.", logprobs=True, top_logprobs=1).json()
    choice = body["choices"][0]
    assert choice["message"]["content"] == "2"
    first = choice["logprobs"]["content"][0]
    assert (first["token"], first["logprob"]) == ("2", -0.5)
    assert [e["token"] for e in first["top_logprobs"]] == ["2"]


def test_the_command_line_prints_its_base_url_first() -> None:
    command = [sys.executable, "-m", "tests.llm_server", "--port", "0", "--latency-ms", "1"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        base_url = server.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        reply = httpx.post(
            f"{base_url}/chat/completions",
            json={"messages": [{"role": "user", "content": "[[reply:11/10]]"}]},
            timeout=10,
        )
        assert reply.json()["choices"][0]["message"]["content"] == "11/10"
    finally:
        server.terminate()
        server.wait(10)
