"""The Deita prompts, byte for byte, and the expected score over "1".."6"."""

from __future__ import annotations

import math

import pytest

from app.scoring.deita import (
    COMPLEXITY_TEMPLATE,
    QUALITY_TEMPLATE,
    expected_from_logits,
    expected_score,
)


def test_complexity_prompt_is_deitas_byte_for_byte() -> None:
    expected = "You are a helpful assistant. Please identify the complexity score of the following user query. \n##Query: {instruction}  \n##Complexity: "
    assert expected == COMPLEXITY_TEMPLATE
    assert COMPLEXITY_TEMPLATE.encode() == expected.encode()


def test_quality_prompt_is_deitas_byte_for_byte() -> None:
    expected = "You are a helpful assistant. Please identify the quality score of the Response corresponding to the Question. \n #Question#:\n{instruction}\n#Response#:\n{output} \n##Quality: "
    assert expected == QUALITY_TEMPLATE


def test_equal_logits_give_three_and_a_half() -> None:
    assert expected_from_logits([0.0] * 6) == pytest.approx(3.5)
    assert expected_from_logits([-7.25] * 6) == pytest.approx(3.5)


def test_equal_logprobs_give_three_and_a_half_and_no_flag() -> None:
    value, flag = expected_score({str(d): math.log(1 / 6) for d in range(1, 7)} | {"the": -0.1})
    assert value == pytest.approx(3.5)
    assert flag is None


@pytest.mark.parametrize("digit", [1, 2, 3, 4, 5, 6])
def test_one_dominant_token_gives_about_that_digit(digit: int) -> None:
    logprobs = {str(d): -30.0 for d in range(1, 7)} | {str(digit): -0.01}
    value, flag = expected_score(logprobs)
    assert value == pytest.approx(digit, abs=1e-6)
    assert flag is None


def test_known_logits_give_the_softmax_expectation() -> None:
    logits = [0.0, 1.0, 2.0, 0.5, -1.0, 3.0]
    weights = [math.exp(x) for x in logits]
    manual = sum(w * i for i, w in enumerate(weights, start=1)) / sum(weights)
    assert expected_from_logits(logits) == pytest.approx(manual)
    # Large logits would overflow a naive exp(); the softmax is shift-invariant.
    assert expected_from_logits([x + 1000 for x in logits]) == pytest.approx(manual)


def test_a_missing_token_gives_three_and_a_flag() -> None:
    logprobs = {"1": -2.0, "2": -1.0, "3": -0.5, "4": -0.2, "5": -3.0}
    assert expected_score(logprobs) == (3.0, "tokens_missing")


def test_a_digit_with_a_space_is_not_the_digit() -> None:
    logprobs = {str(d): -1.0 for d in range(1, 6)} | {" 6": -1.0}
    assert expected_score(logprobs) == (3.0, "tokens_missing")


def test_six_logits_are_required() -> None:
    with pytest.raises(ValueError):
        expected_from_logits([1.0, 2.0])
