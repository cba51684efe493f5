"""What a score is: read from an endpoint's answers (`interpret`), computed here without a
model (`score_locally`), or derived from other recipes' stored scores (`derive`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.models.scoring import ScorerKind, ScoreState
from app.platform.errors import InvalidInput
from app.platform.llm.chat import ChatResult
from app.scoring import deita, lima, reward_endpoint
from app.scoring.example_text import ExampleText
from app.scoring.parsing import parse_rating
from app.scoring.recipes import Recipe
from app.scoring.stats import text_stats


@dataclass
class ScoreResult:
    """A score for one example: a value, or the state and raw text that say why there is none."""

    value: float | None
    state: ScoreState
    raw: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def interpret(recipe: Recipe, example: ExampleText, results: Sequence[ChatResult]) -> ScoreResult:
    """The score that the endpoint's answers to `build_requests` give."""
    failures = [result.error for result in results if result.failed]
    if failures:
        return ScoreResult(None, ScoreState.FAILED, raw=failures[0])
    if not results:
        return ScoreResult(None, ScoreState.FAILED, raw="the example has no user/assistant turn")
    if recipe.parse == reward_endpoint.PARSE:
        value, state, details = reward_endpoint.read_reward(results[0])
        return ScoreResult(value, state, raw=results[0].text, details=details)
    if recipe.kind == ScorerKind.LLM_RATING:
        return _read_rating(recipe, results[0])
    if recipe.parse == "deita":
        return _read_logprobs(example, results)
    raise InvalidInput(f"{recipe.name} reads no LLM answers", field="scorer")


def _read_rating(recipe: Recipe, result: ChatResult) -> ScoreResult:
    """A rating parsed from an answer; the raw text is kept whatever the outcome."""
    text = result.text or ""
    truncated = result.finish_reason == "length"
    parsed = parse_rating(text, recipe.parse, recipe.low, recipe.high, truncated=truncated)
    if parsed.value is None:
        return ScoreResult(
            None, ScoreState.PARSE_ERROR, raw=text, details={"reason": parsed.reason}
        )
    return ScoreResult(parsed.value, ScoreState.OK, raw=text)


def _read_logprobs(example: ExampleText, results: Sequence[ChatResult]) -> ScoreResult:
    """The Deita expected score per turn, from each turn's top log-probabilities."""
    if len(results) != len(example.turns):
        reason = f"{len(results)} answers for {len(example.turns)} turns"
        return ScoreResult(None, ScoreState.FAILED, raw=reason)
    if any(result.top_logprobs is None for result in results):
        reason = "the endpoint returned no log-probabilities; it must support top_logprobs"
        return ScoreResult(None, ScoreState.FAILED, raw=reason)
    scored = [deita.expected_score(result.top_logprobs or {}) for result in results]
    return from_turn_scores([value for value, _ in scored], [flag for _, flag in scored])


def from_turn_scores(
    values: Sequence[float], flags: Sequence[str | None] | None = None
) -> ScoreResult:
    """A Deita score from its per-turn values: their mean, with the turns kept in details."""
    if not values:
        return ScoreResult(None, ScoreState.FAILED, raw="the example has no user/assistant turn")
    flags = list(flags) if flags is not None else [None] * len(values)
    details: dict[str, Any] = {"turns": [float(v) for v in values], "flags": flags}
    if any(flags):
        details["flag"] = next(flag for flag in flags if flag)
    return ScoreResult(sum(values) / len(values), ScoreState.OK, details=details)


def score_locally(recipe: Recipe, example: ExampleText) -> ScoreResult:
    """A heuristic score, computed here without any model."""
    heuristic = recipe.params.get("heuristic")
    if heuristic == "length":
        stats = text_stats(example)
        return ScoreResult(float(stats["assistant_chars"]), ScoreState.OK, details=stats)
    if heuristic == "lima":
        return _lima(recipe, example)
    raise InvalidInput(f"{recipe.name} is not a heuristic computed here", field="scorer")


def _lima(recipe: Recipe, example: ExampleText) -> ScoreResult:
    """The LIMA checks on all assistant turns joined, and the cleaned text when it differs."""
    answer = example.answer
    bounds = {k: int(recipe.params[k]) for k in ("min_chars", "max_chars") if k in recipe.params}
    check = lima.check_answer(answer, **bounds)
    details: dict[str, Any] = {"failed": check.failed}
    if check.cleaned != answer:
        details["cleaned"] = check.cleaned
        if len(example.turns) > 1:
            details["cleaned_turns"] = [lima.clean(turn.assistant) for turn in example.turns]
    return ScoreResult(check.value, ScoreState.OK, details=details)


def derive(
    recipe: Recipe, inputs: Mapping[str, tuple[float | None, Mapping[str, Any]]]
) -> ScoreResult:
    """A derived score from the stored (value, details) of the recipes it needs."""
    if recipe.params.get("combine") != "sum_of_products":
        raise InvalidInput(f"{recipe.name} is not derived from other scores", field="scorer")
    per_input: list[list[float]] = []
    for name in recipe.needs:
        turns = _input_turns(name, inputs.get(name))
        if isinstance(turns, str):
            return ScoreResult(None, ScoreState.FAILED, raw=turns)
        per_input.append(turns)
    if len({len(turns) for turns in per_input}) != 1:
        counts = ", ".join(f"{n}: {len(t)}" for n, t in zip(recipe.needs, per_input, strict=True))
        return ScoreResult(None, ScoreState.FAILED, raw=f"the inputs differ in turns ({counts})")
    products = [math.prod(values) for values in zip(*per_input, strict=True)]
    details: dict[str, Any] = {"turns": products}
    flags = [inputs[name][1].get("flag") for name in recipe.needs]
    if any(flags):
        details["flag"] = next(flag for flag in flags if flag)
    return ScoreResult(sum(products), ScoreState.OK, details=details)


def _input_turns(
    name: str, stored: tuple[float | None, Mapping[str, Any]] | None
) -> list[float] | str:
    """The per-turn values of one input score, or why it cannot be used."""
    if stored is None:
        return f"no {name} score for this example: score it first"
    value, details = stored
    turns = details.get("turns") if details else None
    if value is None:
        return f"the {name} score has no value"
    if not isinstance(turns, list) or not turns:
        return f"the {name} score keeps no per-turn values"
    return [float(t) for t in turns]
