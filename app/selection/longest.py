"""Long Is More (Zhao et al. 2024, "Long Is More for Alignment"): the k examples with the longest
final answers, a baseline that many selectors fail to beat.

The length is counted in characters, or in tokens of a named local tokenizer folder (never a
hub). Ties go to the lower example id, so the same pool always gives the same set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Example
from app.platform.errors import InvalidInput
from app.platform.sampling import one_of

# Examples read (and tokenized) at a time.
BATCH = 2000


def final_answer(messages: Sequence[Mapping[str, Any]] | None, output: str | None) -> str:
    """The last assistant message (the Alpaca output when there are no messages)."""
    for message in reversed(messages or []):
        if message.get("role") == "assistant":
            return str(message.get("content") or "")
    return output or ""


def longest_order(lengths: Mapping[int, int]) -> list[int]:
    """Ids by length, longest first; ties by id."""
    return sorted(lengths, key=lambda example_id: (-lengths[example_id], example_id))


def answer_lengths(
    session: Session, ids: Sequence[int], tokenizer: str | None = None
) -> dict[int, int]:
    """Each example's final-answer length, in characters or in the tokenizer's tokens."""
    counter = _tokenizer(tokenizer) if tokenizer else None
    lengths: dict[int, int] = {}
    for start in range(0, len(ids), BATCH):
        chunk = list(ids[start : start + BATCH])
        rows = session.execute(
            select(Example.id, Example.messages, Example.output).where(
                one_of(session, Example.id, chunk)
            )
        ).all()
        answers = {row[0]: final_answer(row[1], row[2]) for row in rows}
        if counter is None:
            lengths.update((i, len(text)) for i, text in answers.items())
            continue
        keys = list(answers)
        encoded = counter([answers[i] for i in keys], add_special_tokens=False)["input_ids"]
        lengths.update((i, len(tokens)) for i, tokens in zip(keys, encoded, strict=True))
    return lengths


def longest_ids(
    session: Session, ids: Sequence[int], budget: int, tokenizer: str | None = None
) -> list[int]:
    """The `budget` examples of `ids` with the longest final answers, longest first."""
    return longest_order(answer_lengths(session, ids, tokenizer))[:budget]


@lru_cache(maxsize=2)
def _tokenizer(path: str) -> Any:
    # Loading a tokenizer takes a second; a worker keeps the last ones it used.
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise InvalidInput(f"tokenizer: {path} is not a local tokenizer folder", field="tokenizer")
    try:
        from transformers import AutoTokenizer
    except ImportError:
        raise InvalidInput(
            "tokenizer: counting tokens needs the ml extra (pip install 'sift[ml]')",
            field="tokenizer",
        ) from None
    try:
        return AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise InvalidInput(
            f"tokenizer: {path} cannot be loaded ({exc})", field="tokenizer"
        ) from None
