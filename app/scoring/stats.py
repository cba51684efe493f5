"""Cheap statistics of an example that users filter on: turns, characters, words."""

from __future__ import annotations

from typing import Any

from app.scoring.example_text import ExampleText


def text_stats(example: ExampleText) -> dict[str, Any]:
    """Counts over the example's turns and its instruction, input and output fields."""
    user = [turn.user for turn in example.turns]
    assistant = [turn.assistant for turn in example.turns]
    return {
        "turns": len(example.turns),
        "characters": sum(map(len, user + assistant)),
        "words": sum(_words(text) for text in user + assistant),
        "user_chars": sum(map(len, user)),
        "user_words": sum(map(_words, user)),
        "assistant_chars": sum(map(len, assistant)),
        "assistant_words": sum(map(_words, assistant)),
        "instruction_chars": len(example.instruction),
        "input_chars": len(example.input),
        "output_chars": len(example.output),
        "output_words": _words(example.output),
    }


def _words(text: str) -> int:
    """Whitespace-separated words."""
    return len(text.split())
