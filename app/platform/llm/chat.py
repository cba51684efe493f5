"""What is asked of a chat endpoint and what comes back: requests, results, a client's call
counts, and the payload and hash that key a request in the response cache."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from app.platform.config import LLMEndpoint
from app.platform.hashing import json_sha256
from app.platform.llm.endpoints import normalise_base_url


@dataclass(frozen=True)
class ChatRequest:
    """One chat completion request, apart from the endpoint and model that serve it."""

    messages: tuple[tuple[str, str], ...]  # (role, content) pairs
    temperature: float = 0.0
    max_tokens: int = 256
    top_logprobs: int | None = None  # when set, ask for logprobs at each generated position

    @classmethod
    def of(cls, messages: list[dict[str, str]], **sampling: Any) -> ChatRequest:
        """A request from OpenAI-style message dicts."""
        return cls(tuple((m["role"], m["content"]) for m in messages), **sampling)

    def message_dicts(self) -> list[dict[str, str]]:
        """The messages as the OpenAI API takes them."""
        return [{"role": role, "content": content} for role, content in self.messages]


@dataclass
class ChatResult:
    """What came back for a request: an answer, or the error that ended its retries."""

    text: str | None
    finish_reason: str | None = None
    # token -> logprob at the first generated position (with `top_logprobs`)
    top_logprobs: dict[str, float] | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    latency_ms: float | None = None
    cached: bool = False
    error: str | None = None  # set when the call failed; a failure is never cached
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        """True when no answer came back."""
        return self.error is not None


@dataclass
class CallStats:
    """What a client did: calls sent, answers reused, retries, failures, tokens and spend."""

    sent: int = 0  # requests sent for the first time (retries not included)
    cache_hits: int = 0
    batched: int = 0  # answers that came back in a Batch API batch
    retries: int = 0  # further attempts after a retryable failure
    failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """The counts as a plain dict (for job counts and logs); `batched` only where a Batch
        API batch answered something."""
        counts = dataclasses.asdict(self)
        if not self.batched:
            del counts["batched"]
        return counts


def request_payload(endpoint: LLMEndpoint, request: ChatRequest) -> dict[str, Any]:
    """Everything that decides an answer: where it is asked, of which model, and how."""
    return {
        "base_url": normalise_base_url(endpoint.base_url),
        "model": endpoint.model,
        "messages": [[role, content] for role, content in request.messages],
        "temperature": float(request.temperature),
        "max_tokens": int(request.max_tokens),
        "top_logprobs": request.top_logprobs,
    }


def request_hash(endpoint: LLMEndpoint, request: ChatRequest) -> str:
    """The cache key of a request: sha256 of its canonical JSON payload."""
    return json_sha256(request_payload(endpoint, request))


def request_body(model: str, request: ChatRequest) -> dict[str, Any]:
    """The JSON body of the chat completion request that asks `model`."""
    body: dict[str, Any] = {
        "model": model,
        "messages": request.message_dicts(),
        "temperature": request.temperature,
        "max_tokens": request.max_tokens,
    }
    if request.top_logprobs is not None:
        body["logprobs"] = True
        body["top_logprobs"] = request.top_logprobs
    return body
