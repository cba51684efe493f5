"""Reading form fields: blank is not given, a bad value is refused naming its field."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from app.platform import forms
from app.platform.errors import InvalidInput


def test_blank_fields_are_not_given() -> None:
    assert forms.optional("  ") is None
    assert forms.optional(" wikihow ") == "wikihow"
    assert forms.number(" ", "threshold") is None
    assert forms.number("", "tau", default=3.0) == 3.0
    assert forms.integer("", "seed", default=0) == 0
    assert forms.whole_number("\t", "max_tokens") is None
    assert forms.quotas("\n \n", "source") == {}


def test_numbers_are_read() -> None:
    assert forms.number(" 0.5 ", "threshold") == 0.5
    assert forms.number("3", "budget_usd") == 3.0
    assert forms.integer(" 12 ", "n") == 12
    assert forms.whole_number("256", "max_tokens") == 256
    assert forms.required_number("0", "low") == 0.0


@pytest.mark.parametrize(
    ("read", "message"),
    [
        (lambda: forms.number(" lots ", "budget_usd"), "budget_usd: 'lots' is not a number"),
        (lambda: forms.integer("2.5", "budget"), "budget: '2.5' is not a number"),
        (
            lambda: forms.whole_number("many", "max_tokens"),
            "max_tokens: 'many' is not a whole number",
        ),
        (lambda: forms.required_number(" ", "low"), "low: required"),
    ],
)
def test_a_bad_number_names_its_field(read: Callable[[], object], message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        read()
    assert caught.value.message == message
    assert caught.value.detail["field"] == message.split(":")[0]


def test_quota_lines() -> None:
    text = "wikihow=3\n\n  stack=exchange = 2 \n"
    assert forms.quotas(text, "source") == {"wikihow": 3, "stack=exchange": 2}
    with pytest.raises(InvalidInput) as caught:
        forms.quotas("wikihow=3\nwikihow: 2", "source")
    assert caught.value.message == "source quotas, line 2: 'wikihow: 2' is not GROUP=NUMBER"
    assert caught.value.detail["field"] == "source"
