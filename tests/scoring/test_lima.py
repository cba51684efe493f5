"""The LIMA heuristics: each check on crafted answers, the cleaner, and LIMA's own data."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from app.scoring.lima import CHECKS, check_answer, clean, split_code
from tests.conftest import DATA

FILLER = "Water boils at a lower temperature at altitude because the air pressure is lower. "
GOOD = FILLER * 20  # 1,660 characters of plain, impersonal prose


def failed(answer: str) -> list[str]:
    """The checks an answer fails."""
    return check_answer(answer).failed


def test_a_plain_answer_of_the_right_length_passes() -> None:
    result = check_answer(GOOD)
    assert (result.value, result.failed, result.cleaned) == (1.0, [], GOOD)


@pytest.mark.parametrize(
    ("answer", "passes"),
    [("x" * 1199, False), ("x" * 1200, True), ("x" * 4096, True), ("x" * 4097, False)],
)
def test_length_bounds(answer: str, passes: bool) -> None:
    assert ("length" not in failed(answer)) is passes


def test_length_bounds_are_configurable() -> None:
    assert check_answer("short", min_chars=1, max_chars=10).failed == []


@pytest.mark.parametrize(
    "sentence",
    [
        "I think so.",
        "In my view it is.",
        "Trust me.",
        "I'm sure.",
        "I've seen it.",
        "My guess.",
        "I\u2019d say yes.",
    ],
)
def test_first_person(sentence: str) -> None:
    assert failed(GOOD + sentence) == ["first_person"]


@pytest.mark.parametrize(
    "sentence",
    [
        "Use i as the index.",
        "I.e. the boiling point drops.",
        "I/O is slow.",
        "Enemy mines.",
        "Call `I = eye(3)` first.",
        "\n> I wrote this, says the manual.\n",
    ],
)
def test_not_first_person(sentence: str) -> None:
    assert failed(GOOD + sentence) == []


@pytest.mark.parametrize(
    "sentence",
    [
        "As mentioned above, it boils.",
        "The other answers miss this.",
        "As others have said, it boils.",
        "See the previous answer.",
        "Another answer says so.",
        "The accepted answer is wrong.",
    ],
)
def test_references_to_other_answers(sentence: str) -> None:
    assert failed(GOOD + sentence) == ["other_answers"]


@pytest.mark.parametrize(
    ("markup", "reason", "cleaned"),
    [
        ("See [the table](https://example.com/t).", "links", "See the table."),
        ("See https://example.com/t.", "links", "See."),
        ("See <https://example.com/t> now.", "links", "See  now."),
        ('See <a href="https://x.org">this page</a>.', "links", "See this page."),
        ("See [the table][1].\n\n[1]: https://example.com/t\n", "links", "See the table.\n\n"),
        ("Look: ![a plot](plot.png) done.", "images", "Look:  done."),
        ('Look: <img src="plot.png" alt="plot"> done.', "images", "Look:  done."),
        ("It is <b>very</b> hot.", "html", "It is very hot."),
        ("Line one<br>line two.", "html", "Line one\nline two."),
    ],
)
def test_markup_is_flagged_and_cleaned(markup: str, reason: str, cleaned: str) -> None:
    result = check_answer(GOOD + markup)
    assert result.failed == [reason]
    assert result.value == pytest.approx(5 / 6)
    assert result.cleaned == GOOD + cleaned


def test_a_linked_image_is_gone_entirely() -> None:
    assert clean("Before [![logo](logo.png)](https://x.org) after.") == "Before  after."


def test_brackets_without_a_link_definition_are_not_links() -> None:
    text = "Index it as a[i][j] and read [this] later."
    assert clean(text) == text
    assert "links" not in failed(GOOD + text)


def test_a_url_keeps_its_balanced_parentheses_out_of_the_text() -> None:
    assert clean("See https://en.wikipedia.org/wiki/Foo_(bar) now.") == "See now."


CODE_ANSWER = """Use a template:

```html
<div class="x"><a href="https://example.com">link</a><img src="a.png"></div>
```

Or indented:

    <p>I keep https://example.com here</p>

Inline `<b>` and `[x](https://y.z)` stay, but <b>this</b> goes.

- a list item with [a link](https://example.com)
- another item
  1. nested
"""

CODE_CLEANED = """Use a template:

```html
<div class="x"><a href="https://example.com">link</a><img src="a.png"></div>
```

Or indented:

    <p>I keep https://example.com here</p>

Inline `<b>` and `[x](https://y.z)` stay, but this goes.

- a list item with a link
- another item
  1. nested
"""


def test_code_blocks_and_lists_are_left_alone() -> None:
    assert clean(CODE_ANSWER) == CODE_CLEANED


def test_code_is_not_checked() -> None:
    code = "\n\n```\nI <b>read</b> https://example.com ![x](y.png), as mentioned above\n```\n"
    assert failed(GOOD + code) == []


def test_an_unclosed_fence_runs_to_the_end() -> None:
    assert split_code("Text\n```\ncode <b>\n") == [(False, "Text\n"), (True, "```\ncode <b>\n")]


def test_indented_lines_under_a_list_item_are_prose() -> None:
    text = "- item\n\n    continued with <b>bold</b>\n"
    assert clean(text) == "- item\n\n    continued with bold\n"


def test_lima_training_answers_mostly_pass() -> None:
    records = json.loads((DATA / "lima" / "lima.json").read_text())
    assert len(records) == 1029
    results = [
        check_answer("\n\n".join([r["output"], *(turn[1] for turn in r.get("history") or [])]))
        for r in records
    ]
    fails = Counter(reason for result in results for reason in result.failed)
    passes = {check: 1 - fails[check] / len(records) for check in CHECKS}
    # LIMA's Stack Exchange answers were filtered this way; its hand-written, wikiHow and
    # Reddit answers were not, and are often short or personal.
    assert passes["length"] > 0.5
    assert passes["first_person"] > 0.65
    assert all(passes[check] > 0.95 for check in ("other_answers", "links", "images", "html"))
    assert sum(result.value for result in results) / len(results) > 0.85
