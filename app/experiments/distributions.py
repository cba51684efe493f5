"""The arms' score distributions on one axis: for one scorer, a histogram of each arm's
selection over the same bins, with its quartiles, drawn as rows of one SVG on the page."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Dataset, ExperimentArm, Score, ScoreState, SnapshotItem
from app.scoring import service as scoring

BINS = 24


def pool_scorers(session: Session, pool: Dataset) -> list[str]:
    """The scorers (NAME@VERSION) with values on the pool, to pick the axis from."""
    return [row.scorer for row in scoring.scores_summary(session, pool)]


def arm_scores(session: Session, snapshot_id: int, scorer_id: int) -> list[float]:
    """The scorer's ok values of a snapshot's examples (by their content, as scores are kept)."""
    query = (
        select(Score.value)
        .join(SnapshotItem, SnapshotItem.content_hash == Score.content_hash)
        .where(
            SnapshotItem.snapshot_id == snapshot_id,
            Score.scorer_id == scorer_id,
            Score.state == ScoreState.OK.value,
            Score.value.is_not(None),
        )
    )
    return [float(v) for v in session.scalars(query) if v is not None]


def distributions(
    session: Session, arms: Sequence[ExperimentArm], scorer_ref: str, bins: int = BINS
) -> dict[str, Any]:
    """Each arm's histogram over bins shared by every arm (heights as shares of the arm, so
    that arms of different sizes compare), with its count and quartiles."""
    scorer = scoring.find_scorer(session, scorer_ref)
    values = [
        np.array(arm_scores(session, arm.snapshot_id, scorer.id) if arm.snapshot_id else [])
        for arm in arms
    ]
    known = [v for v in values if v.size]
    low = float(min(v.min() for v in known)) if known else 0.0
    high = float(max(v.max() for v in known)) if known else 1.0
    if high <= low:
        high = low + 1.0
    edges = np.linspace(low, high, bins + 1)
    rows = []
    for arm, v in zip(arms, values, strict=True):
        counts = np.histogram(v, bins=edges)[0] if v.size else np.zeros(bins, dtype=int)
        quartiles = np.percentile(v, [25, 50, 75]).tolist() if v.size else [None] * 3
        rows.append({
            "name": arm.name,
            "n": int(v.size),
            "shares": (counts / max(v.size, 1)).tolist(),
            "counts": counts.tolist(),
            "q1": quartiles[0], "median": quartiles[1], "q3": quartiles[2],
        })  # fmt: skip
    tallest = max((max(r["shares"]) for r in rows if r["n"]), default=1.0) or 1.0
    return {
        "scorer": f"{scorer.name}@{scorer.version}",
        "low": low,
        "high": high,
        "bins": bins,
        "tallest": tallest,
        "arms": rows,
    }
