"""Conversations to training rows: the chat template's text, labels on the assistant tokens only,
and optional packing into blocks of the maximum length."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.platform.errors import InvalidInput

IGNORE = -100  # the label that takes a token out of the loss


@dataclass
class Encoded:
    """Training rows and what was dropped on the way."""

    rows: list[dict[str, list[int]]]
    truncated: int = 0
    skipped: int = 0  # nothing left to learn after truncation
    # (position in the snapshot, why) of each example that gives no training row.
    dropped: list[tuple[int, str]] = field(default_factory=list)
    tokens: int = 0
    trained_tokens: int = 0
    notes: list[str] = field(default_factory=list)


def assistant_spans(tokenizer: Any, messages: Sequence[dict[str, str]]) -> tuple[str, list[range]]:
    """The conversation's full text and the character ranges of its assistant turns, found by
    rendering each prefix of the conversation with the template."""
    full = tokenizer.apply_chat_template(list(messages), tokenize=False)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = tokenizer.apply_chat_template(
            list(messages[:i]), tokenize=False, add_generation_prompt=True
        )
        upto = tokenizer.apply_chat_template(list(messages[: i + 1]), tokenize=False)
        if not (full.startswith(before) and full.startswith(upto)):
            raise InvalidInput(
                "template: rendering a conversation's first turns does not give the start of "
                "the whole conversation, so the assistant tokens cannot be found",
                field="template",
            )
        spans.append(range(len(before), len(upto)))
    return full, spans


def encode(tokenizer: Any, messages: Sequence[dict[str, str]], max_length: int) -> dict[str, Any]:
    """input_ids and labels (IGNORE outside the assistant turns), cut at `max_length`."""
    text, spans = assistant_spans(tokenizer, messages)
    encoded = tokenizer(
        text, add_special_tokens=False, return_offsets_mapping=True, truncation=False
    )
    starts = [s.start for s in spans]
    labels = []
    for token, (begin, _end) in zip(encoded["input_ids"], encoded["offset_mapping"], strict=True):
        at = bisect.bisect_right(starts, begin) - 1
        inside = at >= 0 and begin in spans[at]
        labels.append(token if inside else IGNORE)
    ids = list(encoded["input_ids"])
    return {
        "input_ids": ids[:max_length],
        "labels": labels[:max_length],
        "truncated": len(ids) > max_length,
    }


def encode_all(
    tokenizer: Any, conversations: Iterable[Sequence[dict[str, str]]], max_length: int
) -> Encoded:
    """Every conversation encoded; those with no assistant token left are skipped."""
    if not getattr(tokenizer, "is_fast", False):
        raise InvalidInput("base_model: Sift needs a fast tokenizer (tokenizer.json)")
    out = Encoded(rows=[])
    for position, messages in enumerate(conversations):
        row = encode(tokenizer, messages, max_length)
        out.truncated += row.pop("truncated")
        trained = sum(1 for label in row["labels"] if label != IGNORE)
        if trained == 0:
            out.skipped += 1
            out.dropped.append((position, _why_nothing_to_learn(messages, max_length)))
            continue
        out.tokens += len(row["input_ids"])
        out.trained_tokens += trained
        out.rows.append(row)
    if not out.rows:
        raise InvalidInput("snapshot: no example has an assistant answer to train on")
    return out


def _why_nothing_to_learn(messages: Sequence[dict[str, str]], max_length: int) -> str:
    if not any(m["role"] == "assistant" for m in messages):
        return "it has no assistant answer"
    return (
        f"its prompt fills all {max_length:,} tokens of max_seq_length, so no answer token "
        "is left to learn from"
    )


def pack(rows: Sequence[dict[str, list[int]]], max_length: int) -> list[dict[str, list[int]]]:
    """Rows concatenated in order and cut into blocks of `max_length` tokens (the last one
    shorter): no padding at all. A block's tokens attend across the examples in it, as in
    Alpaca's and TRL's "wrapped" packing; a label never crosses into the next example's
    first token because each example starts with its own prompt, which is IGNORE."""
    ids: list[int] = []
    labels: list[int] = []
    for row in rows:
        ids.extend(row["input_ids"])
        labels.extend(row["labels"])
    return [
        {"input_ids": ids[i : i + max_length], "labels": labels[i : i + max_length]}
        for i in range(0, len(ids), max_length)
    ]
