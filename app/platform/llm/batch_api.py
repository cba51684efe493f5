"""The OpenAI Batch API through the `openai` SDK: chat requests written as a JSONL file,
uploaded through /v1/files, a batch created on /v1/batches, polled, and its output and error
files read back line by line."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import openai
import orjson

from app.platform.config import LLMEndpoint

CHAT_URL: Final = "/v1/chat/completions"
# A batch in one of these states changes no more: its files hold every answer it will give.
ENDED = frozenset({"completed", "failed", "expired", "cancelled"})
MARKER_KEY = "sift_batch"
# OpenAI's limit on the requests of one batch.
MOST_LINES = 50_000


@dataclass(frozen=True)
class RemoteBatch:
    """What the provider says about a batch."""

    batch_id: str
    status: str
    counts: dict[str, int] = field(default_factory=dict)
    output_file_id: str | None = None
    error_file_id: str | None = None
    errors: str | None = None

    @property
    def ended(self) -> bool:
        """True once the batch can change no more."""
        return self.status in ENDED


@dataclass(frozen=True)
class LineOutcome:
    """One line of an output or error file: the chat completion's JSON, or why there is none."""

    body: dict[str, Any] | None = None
    error: str | None = None


def batch_client(endpoint: LLMEndpoint) -> openai.OpenAI:
    """A synchronous client for the endpoint's files and batches (the SDK retries these)."""
    return openai.OpenAI(
        base_url=endpoint.base_url,
        api_key=endpoint.api_key or "none",
        max_retries=3,
        timeout=max(endpoint.timeout_s, 60.0),
    )


def input_file(lines: list[tuple[str, dict[str, Any]]]) -> bytes:
    """The JSONL input file: one POST to the chat endpoint per (custom id, body)."""
    return b"".join(
        orjson.dumps({"custom_id": key, "method": "POST", "url": CHAT_URL, "body": body}) + b"\n"
        for key, body in lines
    )


def upload(client: openai.OpenAI, data: bytes, name: str) -> str:
    """Upload an input file for a batch; its file id."""
    uploaded = client.files.create(file=(name, data, "application/jsonl"), purpose="batch")
    return uploaded.id


def create(client: openai.OpenAI, file_id: str, marker: str, window: str) -> RemoteBatch:
    """Start a batch over an uploaded file, tagged with `marker`."""
    made = client.batches.create(
        input_file_id=file_id,
        endpoint=CHAT_URL,
        completion_window=window,  # type: ignore[arg-type]
        metadata={MARKER_KEY: marker},
    )
    return _remote(made)


def find(client: openai.OpenAI, marker: str) -> RemoteBatch | None:
    """The batch tagged with `marker`, if the provider has one (created just before a crash)."""
    for batch in client.batches.list(limit=100):
        if (batch.metadata or {}).get(MARKER_KEY) == marker:
            return _remote(batch)
    return None


def retrieve(client: openai.OpenAI, batch_id: str) -> RemoteBatch:
    """The batch as the provider sees it now."""
    return _remote(client.batches.retrieve(batch_id))


def cancel(client: openai.OpenAI, batch_id: str) -> RemoteBatch:
    """Ask the provider to stop a batch (what it answered so far stays in its output file)."""
    return _remote(client.batches.cancel(batch_id))


def read_lines(client: openai.OpenAI, file_id: str) -> dict[str, LineOutcome]:
    """The outcome of every line of an output or error file, by custom id."""
    text = client.files.content(file_id).text
    outcomes: dict[str, LineOutcome] = {}
    for raw in text.splitlines():
        if not raw.strip():
            continue
        line = orjson.loads(raw)
        key = line.get("custom_id")
        if isinstance(key, str):
            outcomes[key] = line_outcome(line)
    return outcomes


def line_outcome(line: dict[str, Any]) -> LineOutcome:
    """A line's answer, or its error as one line of text."""
    error = line.get("error")
    if isinstance(error, dict):
        code = error.get("code") or "error"
        return LineOutcome(error=f"{code}: {error.get('message') or 'no message'}"[:500])
    response = line.get("response") or {}
    status, body = response.get("status_code"), response.get("body")
    if status == 200 and isinstance(body, dict):
        return LineOutcome(body=body)
    detail = body.get("error", body) if isinstance(body, dict) else body
    if isinstance(detail, dict):
        detail = detail.get("message") or detail
    return LineOutcome(error=f"HTTP {status}: {detail}"[:500])


def _remote(batch: Any) -> RemoteBatch:
    counts = batch.request_counts
    errors = None
    if batch.errors is not None and batch.errors.data:
        errors = "; ".join(
            f"{e.code or 'error'}: {e.message or ''}" + (f" (line {e.line})" if e.line else "")
            for e in batch.errors.data[:5]
        )
    return RemoteBatch(
        batch_id=batch.id,
        status=batch.status,
        counts=(
            {"total": counts.total, "completed": counts.completed, "failed": counts.failed}
            if counts is not None
            else {}
        ),
        output_file_id=batch.output_file_id,
        error_file_id=batch.error_file_id,
        errors=errors,
    )
