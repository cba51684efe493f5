"""Scoring with a local model (a path, never a hub): Deita's digit logits, a reward model's
logit, or an IFD ratio, whichever the recipe reads (`parse`). A worker keeps the last models it
loaded."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from app.models.scoring import ScoreState
from app.platform.errors import InvalidInput
from app.scoring.chat_requests import local_prompts
from app.scoring.example_text import ExampleText
from app.scoring.ifd import IfdScorer, turn_texts
from app.scoring.interpretation import ScoreResult, from_turn_scores
from app.scoring.local_lm import LocalLogitScorer
from app.scoring.recipes import Recipe
from app.scoring.reward import RewardModel, conversation


@lru_cache(maxsize=2)
def _deita_model(path: str) -> LocalLogitScorer:
    return LocalLogitScorer(path)


@lru_cache(maxsize=2)
def _reward_model(path: str) -> RewardModel:
    return RewardModel(path)


@lru_cache(maxsize=2)
def _ifd_model(path: str, definition: str, max_length: int) -> IfdScorer:
    return IfdScorer(path, definition, max_length=max_length)


def score_with_local_model(
    recipe: Recipe, path: str, examples: Sequence[ExampleText]
) -> list[ScoreResult]:
    """The recipe's score of each example, from the model at `path`."""
    if recipe.parse == "deita":
        prompts = [local_prompts(recipe, example) for example in examples]
        values = iter(_deita_model(path).score([p for per in prompts for p in per]))
        return [from_turn_scores([next(values) for _ in per]) for per in prompts]
    if recipe.parse == "reward":
        rewards = _reward_model(path).score([conversation(example) for example in examples])
        return [ScoreResult(value, ScoreState.OK) for value in rewards]
    if recipe.parse == "ifd":
        return ifd_results(
            _ifd_model(path, recipe.params["definition"], recipe.params["max_length"]), examples
        )
    raise InvalidInput(f"{recipe.name} is not scored by a local model", field="scorer")


def ifd_results(scorer: IfdScorer, examples: Sequence[ExampleText]) -> list[ScoreResult]:
    """Each example's IFD: the mean over its answers, each answer's figures in details."""
    texts = [
        turn_texts(e.instruction, e.input, e.output, [(t.user, t.assistant) for t in e.turns])
        for e in examples
    ]
    scores = iter(scorer.score([t for per in texts for t in per]))
    results = []
    for per in texts:
        turns = [next(scores) for _ in per]
        values = [t.value for t in turns if t.value is not None]
        details: dict[str, Any] = {
            "turns": [t.value for t in turns],
            "loss_condition": [t.loss_condition for t in turns],
            "loss_alone": [t.loss_alone for t in turns],
        }
        if not values:
            reason = next((t.reason for t in turns if t.reason), "the example has no answer")
            results.append(ScoreResult(None, ScoreState.PARSE_ERROR, raw=reason, details=details))
            continue
        if len(values) < len(turns):
            details["skipped"] = [t.reason for t in turns if t.value is None]
        results.append(ScoreResult(sum(values) / len(values), ScoreState.OK, details=details))
    return results
