"""The text of an example as the scorers (and the embedders) read it: its user/assistant turns
and its Alpaca fields."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Turn:
    """One user message and the assistant's reply ("" when there is none)."""

    user: str
    assistant: str


@dataclass(frozen=True)
class ExampleText:
    """The text of an example as the scorers read it."""

    instruction: str
    input: str
    output: str
    turns: tuple[Turn, ...]

    @classmethod
    def of(
        cls,
        messages: Sequence[Mapping[str, str]],
        instruction: str | None = None,
        input: str | None = None,
        output: str | None = None,
    ) -> ExampleText:
        """The scorers' view of an example's messages and its Alpaca fields."""
        turns = _turns(messages)
        if instruction is not None:
            return cls(instruction, input or "", output or "", turns)
        first = turns[0] if turns else Turn("", "")
        return cls(first.user, "", first.assistant, turns)

    @property
    def answer(self) -> str:
        """Every assistant turn, joined by blank lines."""
        if not self.turns:
            return self.output
        return "\n\n".join(turn.assistant for turn in self.turns)


def _turns(messages: Sequence[Mapping[str, str]]) -> tuple[Turn, ...]:
    """Consecutive user -> assistant pairs; system messages are not part of any turn."""
    turns: list[Turn] = []
    pending: str | None = None
    for message in messages:
        role, content = message.get("role"), message.get("content") or ""
        if role == "user":
            if pending is not None:
                turns.append(Turn(pending, ""))
            pending = content
        elif role == "assistant":
            turns.append(Turn(pending or "", content))
            pending = None
    if pending is not None:
        turns.append(Turn(pending, ""))
    return tuple(turns)
