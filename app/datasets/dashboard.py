"""What a dataset's dashboard shows: counts per status, source and category in one pass, and
the choices its job forms offer. Aggregates run in SQL, never per row, and are kept for a
while, until something that could change them happens."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

from app.models import (
    Dataset,
    Example,
    ExampleStatus,
    Job,
    ReviewDecision,
    Revision,
    Score,
    Scorer,
)
from app.platform.config import get_settings
from app.platform.sampling import sample_if_large
from app.scoring.service import BUILTIN_RECIPES

T = TypeVar("T")
TOP_GROUPS = 12
# GROUPING(status, source, category) on PostgreSQL: a 1 bit for every column not grouped.
_GROUPED_BY = {0b011: "status", 0b101: "source", 0b110: "category"}


@dataclass
class Counts:
    """How many examples have each value of one column: the largest groups, and the rest."""

    rows: list[tuple[str | None, int]] = field(default_factory=list)
    other_groups: int = 0
    other_examples: int = 0


@dataclass
class Breakdown:
    """A dataset's size, review progress and make-up."""

    total: int
    status: Counts
    source: Counts
    category: Counts
    sampled: int | None = None  # sources and categories estimated from a sample this big

    @property
    def reviewed(self) -> int:
        """Examples with a decision (accepted or rejected)."""
        return sum(n for s, n in self.status.rows if s != ExampleStatus.CANDIDATE.value)


def _grouped(session: Session, dataset: Dataset) -> list[tuple[str, str | None, int]]:
    """(column, value, count) for status, source and category, in one scan (GROUPING SETS)."""
    sets = func.grouping_sets(
        tuple_(Example.status), tuple_(Example.source), tuple_(Example.category)
    )
    rows = session.execute(
        select(
            func.grouping(Example.status, Example.source, Example.category),
            func.coalesce(Example.status, Example.source, Example.category),
            func.count(),
        )
        .where(Example.dataset_id == dataset.id)
        .group_by(sets)
    )
    return [(_GROUPED_BY[int(g)], value, n) for g, value, n in rows]


def breakdown(
    session: Session,
    dataset: Dataset,
    top: int = TOP_GROUPS,
    *,
    sample: int | None = None,
    exact_up_to: int | None = None,
) -> Breakdown:
    """Counts per status (every status, zero included), and the `top` largest sources and
    categories with what the others add up to. Above `exact_up_to` examples (EXACT_UP_TO),
    where one pass over the pool costs more than the page may, statuses stay exact (one count
    that reads an index alone) and sources and categories are estimated from a uniform sample
    of `sample` (POOL_SAMPLE) examples."""
    columns = [Example.source, Example.category]
    drawn = sample_if_large(session, dataset, columns, sample=sample, exact_up_to=exact_up_to)
    if drawn is not None:
        return _estimated(session, dataset, list(drawn.values()), top)
    groups: dict[str, list[tuple[str | None, int]]] = {"status": [], "source": [], "category": []}
    for name, value, count in _grouped(session, dataset):
        groups[name].append((value, count))
    by_status = dict(groups["status"])
    total = sum(by_status.values())
    return Breakdown(
        total,
        _statuses(by_status),
        _largest(groups["source"], top),
        _largest(groups["category"], top),
    )


def _estimated(
    session: Session, dataset: Dataset, drawn: list[tuple[Any, ...]], top: int
) -> Breakdown:
    """Exact statuses; sources and categories scaled up from the sampled examples' ones."""
    by_status: dict[str | None, int] = dict(
        session.execute(
            select(Example.status, func.count())
            .where(Example.dataset_id == dataset.id)
            .group_by(Example.status)
        ).all()
    )
    total = sum(by_status.values())

    def scaled(position: int) -> Counts:
        seen = Counter(row[position] for row in drawn)
        rows = [(value, round(n * total / len(drawn))) for value, n in seen.items()]
        return _largest(rows, top)

    return Breakdown(total, _statuses(by_status), scaled(0), scaled(1), sampled=len(drawn))


def _statuses(by_status: dict[str | None, int]) -> Counts:
    return Counts([(s.value, by_status.get(s.value, 0)) for s in ExampleStatus])


def _largest(rows: list[tuple[str | None, int]], top: int) -> Counts:
    rows.sort(key=lambda row: (-row[1], row[0] or ""))
    rest = rows[top:]
    return Counts(rows[:top], len(rest), sum(n for _, n in rest))


def scorer_names(session: Session) -> list[str]:
    """What the score form offers: the built-in recipes, then the saved custom ones."""
    stored = session.scalars(select(Scorer.name).distinct().order_by(Scorer.name))
    return sorted(BUILTIN_RECIPES) + [n for n in stored if n not in BUILTIN_RECIPES]


def endpoint_names() -> list[str]:
    """The configured LLM endpoints, by name."""
    return sorted(get_settings().llm)


# ---------------------------------------------------------------- the cache of aggregates

# A pool of a million examples takes seconds to count and to bin; the dashboard is opened
# far more often than the pool changes. An aggregate is reused while the marks below stand
# still and for at most CACHE_TTL_S (an undone review decision moves no mark).
CACHE_TTL_S = 30.0
CACHE_ENTRIES = 256
_cache: dict[tuple[str, int, str], tuple[tuple[Any, ...], float, Any]] = {}
_cache_lock = threading.Lock()


def change_marks(session: Session, dataset: Dataset, what: str) -> tuple[Any, ...]:
    """Cheap marks (index lookups) that move when an aggregate may have changed: the
    dataset's newest example and the newest revision for both; the newest review decision for
    the counts (statuses); for the histograms the newest score and scorer, and the last sign
    of life of any job (a score upserted in place happens inside a job; jobs are few)."""
    newest = [
        select(func.max(Example.id)).where(Example.dataset_id == dataset.id),
        select(func.max(Revision.id)),
    ]
    if what == "breakdown":
        newest.append(select(func.max(ReviewDecision.id)))
    else:
        newest += [
            select(func.max(Score.id)),
            select(func.max(Scorer.id)),
            select(func.max(Job.heartbeat_at)),
            select(func.max(Job.finished_at)),
        ]
    row = session.execute(select(*(query.scalar_subquery() for query in newest))).one()
    return (dataset.created_at, *row)


def cached(session: Session, dataset: Dataset, what: str, compute: Callable[[], T]) -> T:
    """`compute()`, or its last result for this dataset while nothing it reads has moved."""
    key = (str(session.get_bind().engine.url), dataset.id, what)
    marks = change_marks(session, dataset, what)
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None and hit[0] == marks and now - hit[1] < CACHE_TTL_S:
        return hit[2]
    value = compute()
    with _cache_lock:
        _cache[key] = (marks, now, value)
        while len(_cache) > CACHE_ENTRIES:
            del _cache[min(_cache, key=lambda k: _cache[k][1])]
    return value
