"""Word-level differences between two texts, for showing an edit against the original."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

# Words with the whitespace after them, so that joining the pieces gives the text back.
_TOKENS = re.compile(r"\S+\s*|\s+")


@dataclass(frozen=True)
class Piece:
    """A run of text that is the same in both ('same'), only in the old ('del') or only in the
    new ('ins')."""

    kind: str
    text: str


def word_diff(old: str, new: str) -> list[Piece]:
    """The pieces that turn `old` into `new`, word by word."""
    a, b = _TOKENS.findall(old), _TOKENS.findall(new)
    pieces: list[Piece] = []
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        if op == "equal":
            pieces.append(Piece("same", "".join(a[a0:a1])))
            continue
        if a1 > a0:
            pieces.append(Piece("del", "".join(a[a0:a1])))
        if b1 > b0:
            pieces.append(Piece("ins", "".join(b[b0:b1])))
    return pieces


def turn_diffs(
    old: list[dict[str, str]], new: list[dict[str, str]]
) -> list[tuple[int, str, list[Piece]]]:
    """(turn index, role, pieces) for each turn whose text differs."""
    changed = []
    for index, (before, after) in enumerate(zip(old, new, strict=False)):
        if before.get("content") != after.get("content"):
            changed.append((index, after["role"], word_diff(before["content"], after["content"])))
    return changed
