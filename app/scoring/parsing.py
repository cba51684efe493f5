"""Reading a rating out of a model's answer: a number in range, or the reason there is none.

Rules (a recipe's `parse`):

- ``alpagasus``: the first line, once stripped of whitespace, markdown emphasis and a final
  period, is a number; else the number right after the first "score:" (any case; whitespace
  and emphasis may sit between). This is the paper's `parse_score`, made case-insensitive.
- ``first_number``: the first number anywhere in the answer.
- ``regex:<pattern>``: group 1 of the first match of the pattern, searched with a time limit
  (the `regex` package's timeout): a pattern that backtracks without end on an answer, such as
  ``((?:a+)+)b``, is that answer's parse error, never a worker stuck on it.

A fraction "a/b" or "a out of b" is read as a only when b is the top of the recipe's range
("4/5" on 0-5 is 4); any other denominator ("4/10", "11/10") is a parse error, since the
number is on a scale the recipe did not ask for. A value outside the range, a refusal, prose
without a number, and an answer cut by the token limit before its number line ended are parse
errors too: a rating that cannot be read is never turned into a number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import regex

RULES = ("alpagasus", "first_number")
REGEX_PREFIX = "regex:"
# A user's pattern runs on model text nobody vetted: far past what a sane pattern needs on an
# answer, and short enough that a whole chunk of pathological answers finishes.
REGEX_TIMEOUT_S = 0.2

# Not inside a word or another number: "gpt-4" is no rating of -4, "v1.2.3" none of 2.
_NUMBER = r"(?<![\w.])[-+]?(?:\d+(?:\.\d+)?|\.\d+)"
_FRACTION = rf"(?P<value>{_NUMBER})(?:\s*(?:/|out\s+of)\s*(?P<scale>{_NUMBER}))?"
_BARE_LINE = re.compile(rf"{_FRACTION}", re.IGNORECASE)
_AFTER_SCORE = re.compile(rf"score\s*:[\s*_`]*{_FRACTION}", re.IGNORECASE)
_ANYWHERE = re.compile(_FRACTION, re.IGNORECASE)
_LINE_DECORATION = "*_`# \t"


@dataclass(frozen=True)
class Parsed:
    """A rating read from an answer: its value, or None and why not."""

    value: float | None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        """True when a value in range was read."""
        return self.value is not None


def validate_rule(rule: str) -> None:
    """Raise ValueError unless `rule` is a known parse rule (a regex must have one group)."""
    if rule in RULES:
        return
    if not rule.startswith(REGEX_PREFIX):
        raise ValueError(f"unknown parse rule {rule!r}: use {', '.join(RULES)} or regex:<pattern>")
    try:
        pattern = regex.compile(rule.removeprefix(REGEX_PREFIX))
    except (regex.error, re.error) as exc:
        raise ValueError(f"the regex does not compile: {exc}") from exc
    if pattern.groups != 1:
        raise ValueError(f"the regex needs exactly one group, it has {pattern.groups}")


def parse_rating(
    text: str,
    rule: str,
    low: float | None,
    high: float | None,
    *,
    truncated: bool = False,
) -> Parsed:
    """Read a rating from `text` by `rule`; `truncated` says the answer hit the token limit."""
    found = _find(text, rule, high)
    if isinstance(found, str):
        return Parsed(None, found)
    value, end = found
    # A number on the answer's last, unfinished line may be cut short ("4" of "4.5").
    if truncated and "\n" not in text[end:]:
        return Parsed(None, "the answer was cut off by the token limit before its score line ended")
    if (low is not None and value < low) or (high is not None and value > high):
        return Parsed(None, f"score {value:g} is outside {_span(low, high)}")
    return Parsed(value)


def _find(text: str, rule: str, high: float | None) -> tuple[float, int] | str:
    """The value and the offset where it ends, or why none was found."""
    if rule == "alpagasus":
        return _alpagasus(text, high)
    if rule == "first_number":
        match = _ANYWHERE.search(text)
        return _read(match, high) if match else "no number in the answer"
    if rule.startswith(REGEX_PREFIX):
        try:
            match = regex.search(rule.removeprefix(REGEX_PREFIX), text, timeout=REGEX_TIMEOUT_S)
        except TimeoutError:
            return (
                f"the pattern took over {REGEX_TIMEOUT_S:g} s on this answer and was stopped: "
                "simplify it (nested repeats such as (a+)+ backtrack without end)"
            )
        except regex.error as exc:
            return f"the pattern does not compile: {exc}"
        if match is None or match.group(1) is None:
            return "the pattern does not match the answer"
        try:
            return float(match.group(1)), match.end(1)
        except ValueError:
            return f"the pattern matched {match.group(1)!r}, which is not a number"
    raise ValueError(f"unknown parse rule {rule!r}")


def _alpagasus(text: str, high: float | None) -> tuple[float, int] | str:
    """The paper's rule: a number alone on the first line, else the number after "score:"."""
    start = len(text) - len(text.lstrip())
    line_end = text.find("\n", start)
    line_end = len(text) if line_end < 0 else line_end
    line = text[start:line_end].strip(_LINE_DECORATION).removesuffix(".").rstrip(_LINE_DECORATION)
    whole = _BARE_LINE.fullmatch(line)
    if whole:
        read = _read(whole, high)
        return (read[0], line_end) if isinstance(read, tuple) else read
    match = _AFTER_SCORE.search(text)
    if match:
        return _read(match, high)
    return "no score on the first line and no number after 'score:'"


def _read(match: re.Match[str], high: float | None) -> tuple[float, int] | str:
    """The value of a number match, refusing a fraction over a scale other than the range's."""
    value = float(match.group("value"))
    scale = match.group("scale")
    if scale is not None and (high is None or float(scale) != high):
        return f"score {match.group(0)!r} is on another scale than the range's top ({high})"
    return value, match.end()


def _span(low: float | None, high: float | None) -> str:
    """A range for a message, open ends shown as such."""
    return f"{'-inf' if low is None else f'{low:g}'} to {'inf' if high is None else f'{high:g}'}"
