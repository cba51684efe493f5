"""Score filters on examples: `alpagasus>=4.5`, `lima=1`, `alpagasus:parse_error`."""

from __future__ import annotations

import re

from sqlalchemy import ColumnElement, and_, exists
from sqlalchemy.orm import Session

from app.models import Example, Score, Scorer, ScoreState
from app.platform.errors import InvalidInput
from app.scoring.scorers import find_scorer

FILTER = re.compile(r"^\s*([a-z0-9-]+(?:@\d+)?)\s*(>=|<=|!=|==|=|>|<)\s*(-?\d+(?:\.\d+)?)\s*$")
STATE_FILTER = re.compile(r"^\s*([a-z0-9-]+(?:@\d+)?)\s*:\s*(ok|parse_error|failed|unscored)\s*$")
_NUMBER = r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
# `lima:4..5`: 4 <= score < 5, as a histogram's bar counts it; `lima:4..` 4 or more.
RANGE_FILTER = re.compile(
    rf"^\s*([a-z0-9-]+(?:@\d+)?)\s*:\s*({_NUMBER})?\s*\.\.\s*({_NUMBER})?\s*$"
)


def score_condition(session: Session, expression: str) -> ColumnElement[bool]:
    """A WHERE clause on examples for `alpagasus>=4.5`, `lima=1`, `alpagasus:parse_error` or
    a range, `alpagasus:4..4.5` (4 <= score < 4.5; an open side: `alpagasus:4.5..`)."""
    if match := RANGE_FILTER.match(expression):
        ref, low, high = match.groups()
        if low is None and high is None:
            raise InvalidInput(
                f"score: {expression!r} gives neither end of the range", field="score"
            )
        scorer = find_scorer(session, ref)
        bounds = [Score.value >= float(low)] if low is not None else []
        bounds += [Score.value < float(high)] if high is not None else []
        return _has_score(scorer, and_(Score.state == ScoreState.OK.value, *bounds))
    if match := FILTER.match(expression):
        ref, op, number = match.groups()
        scorer = find_scorer(session, ref)
        value = float(number)
        compare = {
            ">=": Score.value >= value,
            "<=": Score.value <= value,
            ">": Score.value > value,
            "<": Score.value < value,
            "=": Score.value == value,
            "==": Score.value == value,
            "!=": Score.value != value,
        }[op]
        return _has_score(scorer, and_(Score.state == ScoreState.OK.value, compare))
    if match := STATE_FILTER.match(expression):
        ref, state = match.groups()
        scorer = find_scorer(session, ref)
        if state == "unscored":
            return ~_has_score(scorer, Score.state.is_not(None))
        return _has_score(scorer, Score.state == state)
    raise InvalidInput(
        f"score: {expression!r} is not SCORER OP NUMBER (e.g. alpagasus>=4.5) "
        "or SCORER:STATE (e.g. alpagasus:parse_error) or SCORER:LOW..HIGH (e.g. lima:4..5)",
        field="score",
    )


def scorer_of(expression: str) -> str:
    """The scorer a filter expression reads (`alpagasus` of `alpagasus>=4.5`)."""
    match = (
        FILTER.match(expression) or STATE_FILTER.match(expression) or RANGE_FILTER.match(expression)
    )
    if match is None:
        raise InvalidInput(f"score: {expression!r} is not a score filter", field="score")
    return match.group(1)


def _has_score(scorer: Scorer, condition: ColumnElement[bool]) -> ColumnElement[bool]:
    return exists().where(
        Score.content_hash == Example.content_hash, Score.scorer_id == scorer.id, condition
    )
