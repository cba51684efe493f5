"""Record formats written: an example (or a snapshot item) as an Alpaca, Dolly, ShareGPT,
OpenAI chat or Sift record. For a record imported in a compatible format, a writer gives back
exactly the source keys in their source order, so that an export in the import format
round-trips field by field."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ROLE_TO_SHAREGPT = {"user": "human", "assistant": "gpt", "system": "system"}


@dataclass(slots=True)
class ExampleView:
    """What a writer needs of an example or a snapshot item."""

    id: int | None
    messages: list[dict[str, str]]
    instruction: str | None
    input: str | None
    output: str | None
    source: str | None
    category: str | None
    external_id: str | None
    meta: dict[str, Any]
    source_format: str | None
    source_keys: list[str] | None
    content_hash: str
    status: str | None = None
    origin: str | None = None
    # A snapshot item's frozen answers to the collection's questions.
    answers: dict[str, Any] | None = None


def _keep_source_shape(
    example: ExampleView, family: frozenset[str], full: dict[str, Any]
) -> dict[str, Any]:
    """Exactly the source keys in source order when the example came in this family's format."""
    if example.source_format in family and example.source_keys:
        return {key: full.get(key) for key in example.source_keys}
    return {k: v for k, v in full.items() if v is not None}


def _alpaca_parts(example: ExampleView) -> tuple[str, str, str, list[list[str]], str | None]:
    messages = example.messages
    system = messages[0]["content"] if messages and messages[0]["role"] == "system" else None
    turns = [m for m in messages if m["role"] != "system"]
    history = [[turns[i]["content"], turns[i + 1]["content"]] for i in range(0, len(turns) - 2, 2)]
    if example.instruction is not None and example.output is not None:
        return example.instruction, example.input or "", example.output, history, system
    return turns[-2]["content"], "", turns[-1]["content"], history, system


def to_alpaca(example: ExampleView) -> dict[str, Any]:
    """An Alpaca record; multi-turn examples carry LLaMA-Factory's `history` pairs."""
    instruction, input_text, output, history, system = _alpaca_parts(example)
    full: dict[str, Any] = {
        "instruction": instruction,
        "input": example.input if example.source_format in ("alpaca", "lima") else input_text,
        "output": output,
        "history": history or None,
        "system": system,
        "category": example.category,
        "source": example.source,
    }
    if example.source_format in ("alpaca", "lima"):
        full["history"] = history
        full.update(example.meta)
    return _keep_source_shape(example, frozenset({"alpaca", "lima"}), full)


def to_dolly(example: ExampleView) -> dict[str, Any]:
    """A Dolly record (`instruction`/`context`/`response`/`category`)."""
    instruction, input_text, output, _, _ = _alpaca_parts(example)
    full: dict[str, Any] = {
        "instruction": instruction,
        "context": input_text,
        "response": output,
        "category": example.category,
        "source": example.source,
    }
    if example.source_format == "dolly":
        full["context"] = example.input
        full.update(example.meta)
    return _keep_source_shape(example, frozenset({"dolly"}), full)


def to_sharegpt(example: ExampleView) -> dict[str, Any]:
    """A ShareGPT record (`conversations` of `from`/`value`)."""
    messages = example.messages
    system = messages[0]["content"] if messages and messages[0]["role"] == "system" else None
    full: dict[str, Any] = {
        "id": example.external_id or (str(example.id) if example.id is not None else None),
        "conversations": [
            {"from": ROLE_TO_SHAREGPT[m["role"]], "value": m["content"]}
            for m in messages
            if not (system is not None and m is messages[0])
        ],
        "system": system,
        "category": example.category,
        "source": example.source,
    }
    if example.source_format == "sharegpt":
        full.update(example.meta)
    return _keep_source_shape(example, frozenset({"sharegpt"}), full)


def to_openai(example: ExampleView) -> dict[str, Any]:
    """An OpenAI chat record (`messages`)."""
    full: dict[str, Any] = {
        "messages": [{"role": m["role"], "content": m["content"]} for m in example.messages],
        "category": example.category,
        "source": example.source,
    }
    if example.source_format == "openai":
        full.update(example.meta)
    return _keep_source_shape(example, frozenset({"openai"}), full)


def to_sift(example: ExampleView) -> dict[str, Any]:
    """Sift's own record: every column, for checking results outside Sift or re-import."""
    return {
        "id": example.id,
        "external_id": example.external_id,
        "source": example.source,
        "category": example.category,
        "status": example.status,
        "origin": example.origin,
        "instruction": example.instruction,
        "input": example.input,
        "output": example.output,
        "messages": example.messages,
        "meta": example.meta,
        "source_format": example.source_format,
        "content_hash": example.content_hash,
    }


WRITERS: dict[str, Callable[[ExampleView], dict[str, Any]]] = {
    "alpaca": to_alpaca,
    "lima": to_alpaca,
    "dolly": to_dolly,
    "sharegpt": to_sharegpt,
    "openai": to_openai,
    "jsonl": to_sift,
    "parquet": to_sift,
}
