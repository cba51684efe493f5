"""Reading scores back: which scorers scored a dataset, and the histograms of their values
(exact, or over a sample of a large dataset)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, and_, case, cast, func, select
from sqlalchemy.orm import Session

from app.datasets.service import count_examples
from app.models import Dataset, Example, Score, Scorer, ScoreState
from app.platform.errors import InvalidInput
from app.platform.sampling import sample_if_large, scores_of
from app.scoring.recipes import recipe_from_scorer
from app.scoring.scorers import find_scorer


def histogram(session: Session, dataset: Dataset, ref: str, bins: int = 20) -> dict[str, Any]:
    """The distribution of a scorer's values over a dataset, and how many are not ok."""
    if not 1 <= bins <= 200:
        raise InvalidInput("bins: must be between 1 and 200", field="bins")
    scorer = find_scorer(session, ref)
    joined = (
        select(Score.scorer_id, Score.state, Score.value)
        .join(Example, Example.content_hash == Score.content_hash)
        .where(Example.dataset_id == dataset.id, Score.scorer_id == scorer.id)
        .subquery()
    )
    states: dict[str, int] = dict(
        session.execute(select(joined.c.state, func.count()).group_by(joined.c.state)).all()
    )
    total = count_examples(session, dataset)
    low, high, mean = session.execute(
        select(func.min(joined.c.value), func.max(joined.c.value), func.avg(joined.c.value)).where(
            joined.c.state == ScoreState.OK.value
        )
    ).one()
    ranges = {scorer.id: (low, high, mean)}
    edges = _edges([scorer], ranges, bins)
    counts = _all_bins(session, joined, edges, bins)
    [drawn] = _histograms([scorer], total, {scorer.id: states}, ranges, edges, counts, bins, None)
    values: dict[float, int] = dict(
        session.execute(
            select(joined.c.value, func.count())
            .where(joined.c.state == ScoreState.OK.value)
            .group_by(joined.c.value)
            .order_by(joined.c.value)
            .limit(101)
        ).all()
    )
    del drawn["sampled"]
    # Exact counts when the values are few (ratings on a 0.5 grid, Deita on 1-6).
    drawn["values"] = (
        None if len(values) > 100 else [{"value": v, "count": c} for v, c in values.items()]
    )
    return drawn


@dataclass(frozen=True)
class ScoredBy:
    """A scorer (NAME@VERSION) that has scored a dataset, and how many ok values it gave."""

    scorer: str
    kind: str
    model: str | None
    scored: int


def scores_summary(session: Session, dataset: Dataset) -> list[ScoredBy]:
    """Which scorers have scored this dataset, with how many ok values each."""
    rows = session.execute(
        select(Scorer, func.count(Score.id))
        .join(Score, Score.scorer_id == Scorer.id)
        .join(
            Example,
            and_(Example.content_hash == Score.content_hash, Example.dataset_id == dataset.id),
        )
        .where(Score.state == ScoreState.OK.value)
        .group_by(Scorer.id)
        .order_by(Scorer.name, Scorer.version)
    ).all()
    return [ScoredBy(f"{s.name}@{s.version}", s.kind, s.model, n) for s, n in rows]


def score_histograms(session: Session, dataset: Dataset, bins: int = 24) -> list[dict[str, Any]]:
    """The histogram of every scorer that has scored this dataset, for the dataset page."""
    return [
        histogram(session, dataset, row.scorer, bins) for row in scores_summary(session, dataset)
    ]


def dataset_histograms(
    session: Session,
    dataset: Dataset,
    bins: int = 24,
    *,
    sample: int | None = None,
    exact_up_to: int | None = None,
) -> list[dict[str, Any]]:
    """What `score_histograms` gives (without exact value counts) for every scorer at once,
    for the dashboard. Up to `exact_up_to` examples (EXACT_UP_TO), in two passes over the
    dataset's scores (states and ranges, then bins); a larger dataset, where each pass costs
    seconds, through a uniform sample of `sample` (POOL_SAMPLE) examples, whose size "sampled"
    then gives (None when exact)."""
    drawn = sample_if_large(
        session, dataset, [Example.content_hash], sample=sample, exact_up_to=exact_up_to
    )
    if drawn is not None:
        return _sampled_histograms(session, [row[0] for row in drawn.values()], bins)
    joined = (
        select(Score.scorer_id, Score.state, Score.value)
        .join(Example, Example.content_hash == Score.content_hash)
        .where(Example.dataset_id == dataset.id)
        .subquery()
    )
    per_state = session.execute(
        select(
            joined.c.scorer_id,
            joined.c.state,
            func.count(),
            func.min(joined.c.value),
            func.max(joined.c.value),
            func.avg(joined.c.value),
        ).group_by(joined.c.scorer_id, joined.c.state)
    ).all()
    states: dict[int, dict[str, int]] = {}
    ranges: dict[int, tuple[Any, Any, Any]] = {}
    for scorer_id, state, count, low, high, mean in per_state:
        states.setdefault(scorer_id, {})[state] = count
        if state == ScoreState.OK.value:
            ranges[scorer_id] = (low, high, mean)
    scorers = _scorers(session, list(ranges))
    total = count_examples(session, dataset)
    edges = _edges(scorers, ranges, bins)
    counts = _all_bins(session, joined, edges, bins)
    return _histograms(scorers, total, states, ranges, edges, counts, bins, None)


def _sampled_histograms(session: Session, hashes: list[str], bins: int) -> list[dict[str, Any]]:
    """The dashboard's histograms over the examples with these contents, counted here."""
    states: dict[int, dict[str, int]] = {}
    values: dict[int, list[float]] = {}
    for (scorer_id, _), (state, value) in scores_of(session, hashes).items():
        per_state = states.setdefault(scorer_id, {})
        per_state[state] = per_state.get(state, 0) + 1
        if state == ScoreState.OK.value and value is not None:
            values.setdefault(scorer_id, []).append(value)
    ranges = {i: (min(v), max(v), sum(v) / len(v)) for i, v in values.items()}
    scorers = _scorers(session, list(ranges))
    edges = _edges(scorers, ranges, bins)
    counts: dict[tuple[int, int], int] = {}
    for scorer_id, (low, width) in edges.items():
        for value in values[scorer_id]:
            # As in `_all_bins`: the floor, the top edge in the last bin, below the range in none.
            i = min(math.floor((value - low) / width), bins - 1)
            counts[(scorer_id, i)] = counts.get((scorer_id, i), 0) + 1
    return _histograms(scorers, len(hashes), states, ranges, edges, counts, bins, len(hashes))


def _scorers(session: Session, ids: list[int]) -> list[Scorer]:
    query = select(Scorer).where(Scorer.id.in_(ids)).order_by(Scorer.name, Scorer.version)
    return list(session.scalars(query))


def _edges(
    scorers: list[Scorer], ranges: dict[int, tuple[Any, Any, Any]], bins: int
) -> dict[int, tuple[float, float]]:
    """Scorer id -> (low edge, bin width): the recipe's range, a side it leaves open taken
    from the values seen."""
    edges: dict[int, tuple[float, float]] = {}
    for scorer in scorers:
        recipe = recipe_from_scorer(scorer)
        low, high, _ = ranges[scorer.id]
        lo = recipe.low if recipe.low is not None else low
        hi = recipe.high if recipe.high is not None else high
        if lo is not None and hi is not None:
            edges[scorer.id] = (lo, (hi - lo) / bins if hi > lo else 1.0)
    return edges


def _histograms(
    scorers: list[Scorer],
    total: int,
    states: dict[int, dict[str, int]],
    ranges: dict[int, tuple[Any, Any, Any]],
    edges: dict[int, tuple[float, float]],
    counts: dict[tuple[int, int], int],
    bins: int,
    sampled: int | None,
) -> list[dict[str, Any]]:
    return [
        {
            "scorer": s.name,
            "version": s.version,
            "key": s.key,
            "model": s.model,
            "total": total,
            "states": {state.value: states[s.id].get(state.value, 0) for state in ScoreState}
            | {"unscored": total - sum(states[s.id].values())},
            "min": ranges[s.id][0],
            "max": ranges[s.id][1],
            "mean": float(ranges[s.id][2]) if ranges[s.id][2] is not None else None,
            "bins": [
                {
                    "low": edges[s.id][0] + i * edges[s.id][1],
                    "high": edges[s.id][0] + (i + 1) * edges[s.id][1],
                    "count": counts.get((s.id, i), 0),
                }
                for i in range(bins)
            ]
            if s.id in edges
            else [],
            "values": None,
            "sampled": sampled,
        }
        for s in scorers
    ]


def _all_bins(
    session: Session, joined: Any, edges: dict[int, tuple[float, float]], count: int
) -> dict[tuple[int, int], int]:
    """(scorer id, bin index) -> ok values in that bin, for every scorer in one pass."""
    if not edges:
        return {}
    low = case({i: lo for i, (lo, _) in edges.items()}, value=joined.c.scorer_id)
    width = case({i: w for i, (_, w) in edges.items()}, value=joined.c.scorer_id)
    offset = (joined.c.value - low) / width
    step = cast(func.floor(offset), Integer)
    # The top edge belongs to the last bin (a 5 on a 0-5 scale).
    index = case((step >= count, count - 1), else_=step)
    rows = session.execute(
        select(joined.c.scorer_id, index, func.count())
        .where(joined.c.state == ScoreState.OK.value, joined.c.scorer_id.in_(list(edges)))
        .group_by(joined.c.scorer_id, index)
    )
    return {(int(s), int(i)): n for s, i, n in rows}
