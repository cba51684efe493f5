"""Score distributions on the collection dashboard: each scorer's values over the pool against
the collection's, binned over the recipe's range and aggregated by the database (a big pool is
sampled)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

from sqlalchemy import Integer, Select, cast, exists, func, select
from sqlalchemy.orm import Session

from app.models import (
    Collection,
    CollectionItem,
    Dataset,
    Example,
    Revision,
    Score,
    Scorer,
    ScoreState,
)
from app.platform.sampling import POOL_SAMPLE, id_intervals, sample_pool, scores_of
from app.scoring.service import recipe_from_scorer


@dataclass(frozen=True)
class ScoreRange:
    """A score range cut into `bins` equal bins."""

    low: float
    high: float
    bins: int

    def index(self, value: float) -> int:
        """The bin of a value; the top edge belongs to the last bin."""
        width = (self.high - self.low) / self.bins if self.high > self.low else 1.0
        return max(0, min(int((value - self.low) / width), self.bins - 1))

    def edges(self, i: int) -> tuple[float, float]:
        """The low and high edge of bin `i`."""
        width = (self.high - self.low) / self.bins if self.high > self.low else 1.0
        return self.low + i * width, self.low + (i + 1) * width


class Tally(TypedDict):
    """Count, mean and per-bin counts of one side's values."""

    count: int
    mean: float | None
    bins: list[int]


class SharedBin(TypedDict):
    """One bin of both sides: counts, and each as a share of its side."""

    low: float
    high: float
    pool: int
    selected: int
    pool_share: float
    selected_share: float


class Comparison(TypedDict):
    """One scorer's distribution over the pool against the collection (a mapping: the charts,
    the tests and any JSON read it by key)."""

    scorer: str
    version: int
    pool: Tally
    selected: Tally
    sampled: int | None  # how many pool examples were drawn; None: all were counted
    bins: list[SharedBin]
    top: float  # the largest share of either side, the charts' common height
    stale: int  # the collection's examples edited since, with no score of what they say now


def _scored_values(scorer: Scorer) -> Select[Any]:
    return (
        select(Score.value)
        .join(Example, Example.content_hash == Score.content_hash)
        .where(Score.scorer_id == scorer.id, Score.state == ScoreState.OK.value)
    )


def _binned(session: Session, values: Select[Any], span: ScoreRange) -> Tally:
    """Count, mean and per-bin counts of a column of values, aggregated by the database."""
    column = values.subquery().c.value
    width = (span.high - span.low) / span.bins if span.high > span.low else 1.0
    # Values are clamped into the range first, so the integer cast (which truncates) is a
    # floor and the top edge lands in the last bin.
    clamped: Any = func.least(func.greatest(column, span.low), span.high)
    step = cast((clamped - span.low) / width, Integer)
    rows = session.execute(select(step, func.count(), func.sum(column)).group_by(step)).all()
    counts = Counter[int]()
    total, value_sum = 0, 0.0
    for i, n, s in rows:
        counts[min(int(i), span.bins - 1)] += n
        total += n
        value_sum += float(s or 0.0)
    return {
        "count": total,
        "mean": value_sum / total if total else None,
        "bins": [counts[i] for i in range(span.bins)],
    }


def _span(
    session: Session, scorer: Scorer, values: list[Select[Any]], extra: Sequence[float], bins: int
) -> ScoreRange | None:
    """The recipe's range; a side it leaves open is the lowest or highest value seen."""
    recipe = recipe_from_scorer(scorer)
    low, high = recipe.low, recipe.high
    if low is None or high is None:
        seen = list(extra)
        for query in values:
            column = query.subquery().c.value
            seen += [v for v in session.execute(select(func.min(column), func.max(column))).one()]
        seen = [v for v in seen if v is not None]
        if not seen:
            return None
        low = min(seen) if low is None else low
        high = max(seen) if high is None else high
    return ScoreRange(float(low), float(max(high, low)), bins)


def _collection_scorers(session: Session, collection: Collection) -> list[Scorer]:
    used = (
        select(Score.scorer_id)
        .distinct()
        .join(Example, Example.content_hash == Score.content_hash)
        .join(CollectionItem, CollectionItem.example_id == Example.id)
        .where(CollectionItem.collection_id == collection.id, Score.state == ScoreState.OK.value)
    )
    query = select(Scorer).where(Scorer.id.in_(used)).order_by(Scorer.name, Scorer.version)
    return list(session.scalars(query))


def _pool_scorers(session: Session, dataset_ids: list[int]) -> list[Scorer]:
    # One semi-join per scorer: it stops at the first score found, also on a big pool.
    scored = exists().where(
        Score.scorer_id == Scorer.id,
        Score.state == ScoreState.OK.value,
        Score.content_hash == Example.content_hash,
        Example.dataset_id.in_(dataset_ids),
    )
    return list(session.scalars(select(Scorer).where(scored).order_by(Scorer.name, Scorer.version)))


def score_comparison(
    session: Session,
    collection: Collection,
    datasets: list[Dataset],
    bins: int = 20,
    sample: int = POOL_SAMPLE,
) -> list[Comparison]:
    """For every scorer of the collection's examples (or of the pool while it is empty): the
    distribution over the pool and over the collection, on the same bins. A pool larger than
    `sample` is read through a uniform sample of that many examples: exact counts over a
    million rows take seconds, and the shares that the chart draws move by about a percent."""
    dataset_ids = [d.id for d in datasets]
    if not dataset_ids:
        return []
    scorers = _collection_scorers(session, collection) or _pool_scorers(session, dataset_ids)
    intervals = id_intervals(session, datasets)
    drawn: dict[int, str] | None = None
    sampled: dict[int, list[float]] = {}
    if sum(high - low + 1 for low, high in intervals) > sample:
        drawn = sample_pool(session, datasets, sample, intervals=intervals)
        sampled = _values_of(session, scorers, list(drawn.values()))
    result: list[Comparison] = []
    for scorer in scorers:
        chosen = _scored_values(scorer).join(
            CollectionItem, CollectionItem.example_id == Example.id
        )
        chosen = chosen.where(CollectionItem.collection_id == collection.id)
        if drawn is None:
            pool = _scored_values(scorer).where(Example.dataset_id.in_(dataset_ids))
            span = _span(session, scorer, [pool, chosen], [], bins)
            before = _binned(session, pool, span) if span else None
        else:
            values = sampled.get(scorer.id, [])
            span = _span(session, scorer, [chosen], values, bins)
            before = _counted(values, span) if span else None
        if span is None or before is None:
            continue
        after = _binned(session, chosen, span)
        shared = _shares(span, before, after)
        shares = [b["pool_share"] for b in shared] + [b["selected_share"] for b in shared]
        result.append(
            Comparison(
                scorer=scorer.name,
                version=scorer.version,
                pool=before,
                selected=after,
                sampled=len(drawn) if drawn is not None else None,
                bins=shared,
                top=max([*shares, 0.0]),
                stale=_stale(session, collection, scorer),
            )
        )
    return result


def _stale(session: Session, collection: Collection, scorer: Scorer) -> int:
    """The collection's edited examples that this scorer has not scored since."""
    edited = exists().where(Revision.example_id == Example.id)
    scored = exists().where(
        Score.scorer_id == scorer.id, Score.content_hash == Example.content_hash
    )
    return (
        session.scalar(
            select(func.count())
            .select_from(CollectionItem)
            .join(Example, Example.id == CollectionItem.example_id)
            .where(CollectionItem.collection_id == collection.id, edited, ~scored)
        )
        or 0
    )


def _values_of(
    session: Session, scorers: list[Scorer], hashes: list[str]
) -> dict[int, list[float]]:
    """Scorer id -> the ok values for these contents, one per entry (a repeat counts again)."""
    found = scores_of(session, hashes, [s.id for s in scorers])
    ok = {key: value for key, (state, value) in found.items() if state == ScoreState.OK.value}
    return {s.id: [v for h in hashes if (v := ok.get((s.id, h))) is not None] for s in scorers}


def _counted(values: list[float], span: ScoreRange) -> Tally:
    """Count, mean and per-bin counts of values in memory, like `_binned` in the database."""
    counts = Counter(span.index(v) for v in values)
    return {
        "count": len(values),
        "mean": sum(values) / len(values) if values else None,
        "bins": [counts[i] for i in range(span.bins)],
    }


def _shares(span: ScoreRange, pool: Tally, chosen: Tally) -> list[SharedBin]:
    """Bins as shares of each side, so that a pool of millions and a set of a thousand draw
    on one axis."""
    bins = []
    for i in range(span.bins):
        low, high = span.edges(i)
        bins.append(
            SharedBin(
                low=low,
                high=high,
                pool=pool["bins"][i],
                selected=chosen["bins"][i],
                pool_share=pool["bins"][i] / pool["count"] if pool["count"] else 0.0,
                selected_share=chosen["bins"][i] / chosen["count"] if chosen["count"] else 0.0,
            )
        )
    return bins
