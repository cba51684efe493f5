"""Calls to OpenAI-compatible endpoints: what is asked and what comes back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
