"""Reading ratings: what counts as a score, and what is a parse error with the text kept."""

from __future__ import annotations

import pytest

from app.scoring.parsing import parse_rating, validate_rule


def alpagasus(text: str, truncated: bool = False) -> float | None:
    """The AlpaGasus rule on a 0-5 range."""
    return parse_rating(text, "alpagasus", 0, 5, truncated=truncated).value


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("4.5\nexplanation", 4.5),
        ("4.5", 4.5),
        ("5\n\nThe response is accurate.", 5.0),
        ("  3.5  \nok", 3.5),
        ("**4**\nBold first line.", 4.0),
        ("4.5.\nWith a final period.", 4.5),
        ("Score: 4", 4.0),
        ("score:3.5", 3.5),
        ("SCORE: 2\nshouting", 2.0),
        ("The response is fine.\nScore: **4.5**", 4.5),
        ("Score:\n4", 4.0),
        ("0\nWrong.", 0.0),
        # A fraction over the range's own top is read as its numerator.
        ("4/5\nGood.", 4.0),
        ("4 out of 5\nGood.", 4.0),
    ],
)
def test_alpagasus_reads(text: str, value: float) -> None:
    assert alpagasus(text) == value


@pytest.mark.parametrize(
    "text",
    [
        "The response is accurate and complete.",
        "11/10",
        "4/10\nanother scale",
        "-1",
        "5.5\ntoo high",
        "6\n",
        "I'm sorry, but I can't help with that.",
        "",
        "I would give it a 4.",
        "Rating: 4\nnot the paper's keyword",
        "gpt-4 says nothing",
    ],
)
def test_alpagasus_parse_errors(text: str) -> None:
    parsed = parse_rating(text, "alpagasus", 0, 5)
    assert parsed.value is None
    assert parsed.reason


def test_a_truncated_first_line_is_a_parse_error() -> None:
    # "4" may be the start of "4.5": the token limit cut the line.
    assert alpagasus("4", truncated=True) is None
    assert alpagasus("Long explanation ... Score: 4", truncated=True) is None


def test_a_truncated_explanation_after_a_complete_score_line_is_read() -> None:
    assert alpagasus("4.5\nThe response is accurate but the explanation ran", truncated=True) == 4.5


def test_out_of_range_reason_names_the_range() -> None:
    parsed = parse_rating("7", "alpagasus", 0, 5)
    assert parsed.reason == "score 7 is outside 0 to 5"


def test_first_number_rule() -> None:
    assert parse_rating("I rate this 8 of 10.", "first_number", 1, 10).value == 8.0
    assert parse_rating("7/10", "first_number", 1, 10).value == 7.0
    assert parse_rating("no digits", "first_number", 1, 10).value is None
    assert parse_rating("v1.2.3 is 9", "first_number", 1, 10).value == 9.0


def test_regex_rule() -> None:
    rule = r"regex:Rating:\s*\[\[(\d+(?:\.\d+)?)\]\]"
    assert parse_rating("Rating: [[7.5]]", rule, 1, 10).value == 7.5
    assert parse_rating("Rating: 7.5", rule, 1, 10).value is None
    assert parse_rating("Rating: [[11]]", rule, 1, 10).value is None
    assert (
        parse_rating("x", "regex:(\\w+)", 1, 10).reason
        == "the pattern matched 'x', which is not a number"
    )


@pytest.mark.parametrize("rule", ["alpagasus", "first_number", r"regex:score (\d)"])
def test_valid_rules(rule: str) -> None:
    validate_rule(rule)


@pytest.mark.parametrize("rule", ["guess", "regex:(", r"regex:\d+", r"regex:(\d)(\d)"])
def test_invalid_rules(rule: str) -> None:
    with pytest.raises(ValueError):
        validate_rule(rule)


@pytest.mark.parametrize("pattern", [r"regex:((a|a)+)b", r"regex:(?:(a)|a)+\d(\d)"])
def test_a_backtracking_regex_is_stopped_and_reported_per_answer(pattern: str) -> None:
    # Python's re would run these for ages on 40 characters (the time doubles with each one);
    # the regex package stops at its timeout and the answer is a parse error saying so.
    parsed = parse_rating("a" * 40, pattern, 0, 5)
    assert parsed.value is None
    assert parsed.reason is not None and "was stopped" in parsed.reason


def test_the_reported_redos_pattern_ends_as_a_plain_mismatch() -> None:
    # Issue 18's pattern: the regex package matches it without backtracking without end.
    parsed = parse_rating("a" * 40, "regex:((?:a+)+)b", 0, 5)
    assert parsed.reason == "the pattern does not match the answer"
