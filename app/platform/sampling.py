"""Uniform random samples of a pool (one or more datasets) and their scores: what the
dashboards draw a large pool's distributions from, since exact counts over millions of rows
take seconds and the shares that a chart draws move by about a percent."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, any_, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from app.models import Dataset, Example, Score

# A larger pool's distributions are drawn from a uniform sample this big: a bin's share is then
# within about a percent (two standard errors). Reading the scores of 5,000 examples took
# 0.2 to 0.3 s on a million-example pool (a heap page per score), 2,000 a third of that.
POOL_SAMPLE = 2_000
# The dataset dashboard counts exactly up to this many examples (about 0.1 s on PostgreSQL).
EXACT_UP_TO = 20_000
LOOKUP_BATCH = 5_000
MAX_DRAWS = 20  # ids looked up per example wanted, at most: a very sparse pool is not sampled


def one_of(session: Session, column: Any, values: Sequence[Any]) -> ColumnElement[bool]:
    """`column IN values` as `= ANY(array)`, one parameter instead of thousands (parsing and
    planning a 5,000-item IN list took more than the lookups themselves)."""
    return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))


def id_intervals(session: Session, datasets: list[Dataset]) -> list[tuple[int, int]]:
    """Disjoint id intervals that hold every example of the datasets."""
    bounds = []
    for dataset in datasets:
        # Without GROUP BY, min() and max() are each one step into the (dataset_id, id) index;
        # grouped, PostgreSQL reads every entry of a million-example dataset.
        low, high = session.execute(
            select(func.min(Example.id), func.max(Example.id)).where(
                Example.dataset_id == dataset.id
            )
        ).one()
        if low is not None:
            bounds.append((low, high))
    intervals: list[tuple[int, int]] = []
    for low, high in sorted(bounds):
        if intervals and low <= intervals[-1][1] + 1:  # datasets imported side by side
            intervals[-1] = (intervals[-1][0], max(intervals[-1][1], high))
        else:
            intervals.append((low, high))
    return intervals


def sample_rows(
    session: Session,
    datasets: list[Dataset],
    size: int,
    columns: Sequence[Any],
    seed: int = 0,
    intervals: list[tuple[int, int]] | None = None,
) -> dict[int, tuple[Any, ...]]:
    """A uniform random sample of `size` examples of the datasets (all of them when fewer):
    example id -> the values of `columns`. Ids are drawn inside the datasets' id intervals and
    looked up by primary key, so a pool of millions is never scanned. Fewer than `size` come
    back when the pool is smaller, or when its ids are so sparse that MAX_DRAWS ids per
    example wanted found too few (the caller then counts exactly)."""
    if intervals is None:
        intervals = id_intervals(session, datasets)
    if not intervals or size <= 0:
        return {}
    rng = np.random.default_rng(seed)
    lengths = np.array([high - low + 1 for low, high in intervals], dtype=np.float64)
    dataset_ids = [d.id for d in datasets]
    found: dict[int, tuple[Any, ...]] = {}
    drawn, density = 0, 1.0
    for _ in range(6):  # ids have gaps (other datasets, deletions): draw again until enough
        count = int((size - len(found)) / max(density, 0.02) * 1.1) + 16
        count = min(count, MAX_DRAWS * size - drawn)
        if count <= 0:
            break
        picks = rng.choice(len(intervals), size=count, p=lengths / lengths.sum())
        ids: set[int] = set()
        for k, (low, high) in enumerate(intervals):
            ids.update(int(i) for i in rng.integers(low, high + 1, size=int((picks == k).sum())))
        fresh = sorted(ids - found.keys())
        for start in range(0, len(fresh), LOOKUP_BATCH):
            rows = session.execute(
                select(Example.id, *columns).where(
                    one_of(session, Example.id, fresh[start : start + LOOKUP_BATCH]),
                    Example.dataset_id.in_(dataset_ids),
                )
            )
            found.update({row[0]: tuple(row[1:]) for row in rows})
        drawn += len(fresh)
        density = len(found) / drawn if drawn else 1.0
        if len(found) >= size or len(found) >= sum(lengths):
            break
    keys = sorted(found)
    if len(keys) > size:  # a random subset: the lowest ids would not be a uniform sample
        keys = sorted(keys[int(i)] for i in rng.choice(len(keys), size=size, replace=False))
    return {key: found[key] for key in keys}


def sample_pool(
    session: Session,
    datasets: list[Dataset],
    size: int,
    seed: int = 0,
    intervals: list[tuple[int, int]] | None = None,
) -> dict[int, str]:
    """A uniform random sample of `size` examples of the datasets (see `sample_rows`):
    example id -> content hash."""
    rows = sample_rows(session, datasets, size, [Example.content_hash], seed, intervals)
    return {example_id: row[0] for example_id, row in rows.items()}


def scores_of(
    session: Session, hashes: list[str], scorer_ids: list[int] | None = None
) -> dict[tuple[int, str], tuple[str, float | None]]:
    """(scorer id, content hash) -> (state, value) of every score of these contents, by the
    given scorers or by any; looked up by key, a batch at a time."""
    found: dict[tuple[int, str], tuple[str, float | None]] = {}
    unique = sorted(set(hashes))
    for start in range(0, len(unique), LOOKUP_BATCH):
        query = select(Score.scorer_id, Score.content_hash, Score.state, Score.value).where(
            one_of(session, Score.content_hash, unique[start : start + LOOKUP_BATCH])
        )
        if scorer_ids is not None:
            query = query.where(Score.scorer_id.in_(scorer_ids))
        found.update({(i, h): (state, value) for i, h, state, value in session.execute(query)})
    return found


def larger_than(session: Session, dataset: Dataset, limit: int) -> bool:
    """Whether the dataset holds more than `limit` examples (reads at most limit + 1 index
    entries: its ids may be spread among other datasets', so their bounds would not tell)."""
    first = select(Example.id).where(Example.dataset_id == dataset.id).limit(limit + 1)
    return (session.scalar(select(func.count()).select_from(first.subquery())) or 0) > limit


def sample_if_large(
    session: Session,
    dataset: Dataset,
    columns: Sequence[Any],
    *,
    sample: int | None = None,
    exact_up_to: int | None = None,
) -> dict[int, tuple[Any, ...]] | None:
    """A uniform sample of `sample` (POOL_SAMPLE) examples of a dataset of more than
    `exact_up_to` (EXACT_UP_TO) examples, as `sample_rows` gives it; None for a smaller
    dataset, or one whose ids are too sparse to draw from: those are counted exactly."""
    size = POOL_SAMPLE if sample is None else sample
    if not larger_than(session, dataset, EXACT_UP_TO if exact_up_to is None else exact_up_to):
        return None
    drawn = sample_rows(session, [dataset], size, columns)
    return drawn if len(drawn) >= size else None
