"""What an ended batch gave back: each request's answer, priced at the batch price and ready
for the response cache, or why it has none; and a request's body from its cached payload."""

from __future__ import annotations

from typing import Any

from app.platform.config import LLMEndpoint
from app.platform.llm.batch_api import LineOutcome, RemoteBatch
from app.platform.llm.cache import StoredCall
from app.platform.llm.chat import ChatRequest, request_body
from app.platform.llm.responses import read_completion, to_stored


def body_of(payload: dict[str, Any]) -> dict[str, Any]:
    """The chat completion body of a request, from its payload in the response cache."""
    request = ChatRequest(
        tuple((role, content) for role, content in payload["messages"]),
        temperature=payload["temperature"],
        max_tokens=payload["max_tokens"],
        top_logprobs=payload["top_logprobs"],
    )
    return request_body(payload["model"], request)


def batch_results(
    requests: dict[str, dict[str, Any]],
    outcomes: dict[str, LineOutcome],
    remote: RemoteBatch,
    endpoint: tuple[str, LLMEndpoint],
    reserved_usd: float,
) -> tuple[list[StoredCall], dict[str, str]]:
    """The answers to keep (cost at the batch price) and the failures, by request hash."""
    name, config = endpoint
    per_request = reserved_usd / max(1, len(requests))
    stored: list[StoredCall] = []
    failures: dict[str, str] = {}
    for key, payload in requests.items():
        outcome = outcomes.get(key)
        if outcome is None or outcome.body is None:
            ended = f"no answer: the batch ended {remote.status}"
            if remote.errors:
                ended += f" ({remote.errors})"
            failures[key] = outcome.error if outcome is not None and outcome.error else ended
            continue
        wants_logprobs = payload.get("top_logprobs") is not None
        result = read_completion(outcome.body, config, key, logprobs=wants_logprobs)
        if result is None:
            failures[key] = f"malformed response: {str(outcome.body)[:200]!r}"
            continue
        # Without usage figures the real cost is unknown: charge the reservation instead.
        if result.extra.get("usage_missing"):
            result.cost = per_request
        else:
            result.cost *= config.batch_price_factor
        stored.append(to_stored(name, config.model, key, payload, result))
    return stored, failures
