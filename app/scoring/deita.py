"""The Deita complexity and quality scorers: their prompts and the expected score over "1".."6"."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

# Byte for byte as in hkust-nlp/deita (src/deita/selection/scorer/llama_scorer.py).
COMPLEXITY_TEMPLATE = (
    "You are a helpful assistant. Please identify the complexity score of the following user "
    "query. \n##Query: {instruction}  \n##Complexity: "
)
QUALITY_TEMPLATE = (
    "You are a helpful assistant. Please identify the quality score of the Response "
    "corresponding to the Question. \n #Question#:\n{instruction}\n#Response#:\n{output} "
    "\n##Quality: "
)

SCORE_TOKENS = ("1", "2", "3", "4", "5", "6")
# What Deita returns when a score token is missing from the top log-probabilities.
MISSING_SCORE = 3.0
TOKENS_MISSING = "tokens_missing"


def expected_from_logits(six_logits: Sequence[float]) -> float:
    """The expected score sum(p_i * i) over the softmax of the logits of "1".."6"."""
    if len(six_logits) != len(SCORE_TOKENS):
        raise ValueError(f"need {len(SCORE_TOKENS)} logits, got {len(six_logits)}")
    top = max(six_logits)
    # Shifting by the maximum keeps exp() finite; the softmax is unchanged.
    weights = [math.exp(x - top) for x in six_logits]
    total = sum(weights)
    return sum(w * score for score, w in enumerate(weights, start=1)) / total


def expected_score(logprobs: Mapping[str, float]) -> tuple[float, str | None]:
    """The expected score from an endpoint's top log-probabilities, and a flag when tokens lack."""
    if any(token not in logprobs for token in SCORE_TOKENS):
        return MISSING_SCORE, TOKENS_MISSING
    return expected_from_logits([logprobs[token] for token in SCORE_TOKENS]), None
