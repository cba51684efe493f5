"""Deita's evol score for selection: the stored `deita-evol` scores, or, when a dataset has
none but has both Deita scores, complexity x quality derived on the spot (summed over turns, as
the `deita-evol` recipe does), so that `--method deita` needs no extra scoring pass."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session, aliased

from app.models import Example, Score, ScoreState
from app.platform.errors import NotFound
from app.scoring.service import find_scorer

EVOL = "deita-evol"
INPUTS = ("deita-complexity", "deita-quality")
DERIVED = f"{INPUTS[0]} x {INPUTS[1]}"
DERIVED_NOTE = f"evol score derived from {DERIVED} (no {EVOL} scores)"


def has_stored_evol(session: Session) -> bool:
    """True when some dataset was scored with deita-evol itself."""
    try:
        find_scorer(session, EVOL)
    except NotFound:
        return False
    return True


def derived_evol(session: Session, conditions: list[ColumnElement[bool]]) -> dict[int, float]:
    """Example id -> sum over turns of complexity x quality, for the examples (matching
    `conditions`) that have both scores; NotFound when either scorer was never used."""
    try:
        scorers = [find_scorer(session, name) for name in INPUTS]
    except NotFound:
        raise NotFound(
            f"no scorer {EVOL!r}, nor both {INPUTS[0]} and {INPUTS[1]} to derive it from; "
            "score the dataset with them first"
        ) from None
    stored = [_ok_scores(session, conditions, scorer.id) for scorer in scorers]
    values: dict[int, float] = {}
    for example_id, first in stored[0].items():
        second = stored[1].get(example_id)
        if second is not None:
            values[example_id] = _sum_of_products(first, second)
    return values


def _ok_scores(
    session: Session, conditions: list[ColumnElement[bool]], scorer_id: int
) -> dict[int, tuple[float, dict[str, Any]]]:
    score = aliased(Score)
    rows = session.execute(
        select(Example.id, score.value, score.details)
        .join(score, score.content_hash == Example.content_hash)
        .where(
            *conditions,
            score.scorer_id == scorer_id,
            score.state == ScoreState.OK.value,
            score.value.is_not(None),
        )
    )
    return {example_id: (value, details or {}) for example_id, value, details in rows}


def _sum_of_products(
    first: tuple[float, dict[str, Any]], second: tuple[float, dict[str, Any]]
) -> float:
    """Per-turn products summed when both scores keep their turns alike, else one product."""
    a, b = first[1].get("turns"), second[1].get("turns")
    if isinstance(a, list) and isinstance(b, list) and a and len(a) == len(b):
        return float(sum(x * y for x, y in zip(a, b, strict=True)))
    return first[0] * second[0]
