"""Reading answers: a chat completion's JSON or an error answer into a `ChatResult`, and a
result to and from its row in the response cache."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import openai

from app.platform.config import LLMEndpoint
from app.platform.llm.budget import call_cost
from app.platform.llm.cache import CachedAnswer, StoredCall
from app.platform.llm.chat import ChatResult


def read_completion(
    data: Any,
    endpoint: LLMEndpoint,
    key: str,
    *,
    logprobs: bool,
    latency_ms: float | None = None,
) -> ChatResult | None:
    """The result a chat completion's JSON gives; None when it is malformed."""
    try:
        choice = data["choices"][0]
        message = choice.get("message") or {}
    except (TypeError, KeyError, IndexError, AttributeError):
        return None
    text = message.get("content")
    extra: dict[str, Any] = {"request_hash": key}
    if text is None and message.get("refusal"):
        text, extra["refusal"] = message["refusal"], True
    usage = data.get("usage") or {}
    if not usage:
        extra["usage_missing"] = True
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    return ChatResult(
        text=text or "",
        finish_reason=choice.get("finish_reason"),
        top_logprobs=_first_logprobs(choice) if logprobs else None,
        prompt_tokens=prompt,
        completion_tokens=completion,
        cost=call_cost(endpoint, prompt, completion),
        latency_ms=latency_ms,
        extra=extra,
    )


def error_message(exc: openai.APIStatusError) -> str:
    """The message of an error answer, from its body when it has one."""
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])[:300]
    return str(exc.message)[:300]


def _first_logprobs(choice: Mapping[str, Any]) -> dict[str, float]:
    """{token: logprob} at the first generated position: its top list and the chosen token."""
    content = (choice.get("logprobs") or {}).get("content") or []
    if not content:
        return {}
    first = content[0]
    found = {str(e["token"]): float(e["logprob"]) for e in first.get("top_logprobs") or []}
    if "token" in first and first.get("logprob") is not None:
        found.setdefault(str(first["token"]), float(first["logprob"]))
    return found


def from_cache(answer: CachedAnswer, key: str) -> ChatResult:
    """A stored answer as the result of its request."""
    response = answer.response
    return ChatResult(
        text=answer.text,
        finish_reason=response.get("finish_reason"),
        top_logprobs=response.get("top_logprobs"),
        prompt_tokens=answer.prompt_tokens,
        completion_tokens=answer.completion_tokens,
        cost=answer.cost,
        latency_ms=answer.latency_ms,
        cached=True,
        extra={"request_hash": key, **response.get("extra", {})},
    )


def to_stored(
    endpoint_name: str, model: str, key: str, payload: dict[str, Any], result: ChatResult
) -> StoredCall:
    """A result as the cache keeps it."""
    extra = {k: v for k, v in result.extra.items() if k != "request_hash"}
    response = {"finish_reason": result.finish_reason, "top_logprobs": result.top_logprobs}
    if extra:
        response["extra"] = extra
    return StoredCall(
        request_hash=key,
        endpoint=endpoint_name,
        model=model,
        request=payload,
        text=result.text or "",
        response=response,
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        cost=result.cost,
        latency_ms=result.latency_ms,
    )
