"""What the lead's collection dashboard reads: quota progress, score distributions of the pool
against the selection, review progress and agreement with the scorers, items and jobs.

Everything that scans the pool (which may hold millions of examples) is aggregated in SQL and
read by a fragment of its own, so that the dashboard itself only touches the collection."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, Select, cast, exists, func, or_, select
from sqlalchemy.orm import Session

from app.collections import service
from app.datasets.service import by_ids, search_condition
from app.models import (
    Collection,
    CollectionItem,
    Dataset,
    Example,
    ExampleStatus,
    Job,
    ReviewAction,
    ReviewDecision,
    Score,
    Scorer,
    ScoreState,
    Snapshot,
    User,
)
from app.platform.errors import NotFound
from app.platform.sampling import POOL_SAMPLE, id_intervals, sample_pool, scores_of
from app.platform.vectors.search import similar_to
from app.scoring.service import recipe_from_scorer

GROUP_LIMIT = 40  # quota bars shown per field; the rest are summed up
REVIEWED = (ExampleStatus.ACCEPTED.value, ExampleStatus.REJECTED.value)


# ---------------------------------------------------------------- quotas and pool


class Composition(Counter[tuple[int, str, str, str]]):
    """How many of a collection's examples share each (dataset id, source, category, status):
    one grouped read of the collection that quotas, review status and the pool come from."""

    FIELDS = ("dataset_id", "source", "category", "status")

    def by(self, field: str) -> dict[Any, int]:
        """Counts per value of one of FIELDS."""
        position = self.FIELDS.index(field)
        totals: Counter[Any] = Counter()
        for key, n in self.items():
            totals[key[position]] += n
        return dict(totals)


def composition(session: Session, collection: Collection) -> Composition:
    """The collection's examples counted by dataset, source, category and status."""
    rows = session.execute(
        select(Example.dataset_id, Example.source, Example.category, Example.status, func.count())
        .join(CollectionItem, CollectionItem.example_id == Example.id)
        .where(CollectionItem.collection_id == collection.id)
        .group_by(Example.dataset_id, Example.source, Example.category, Example.status)
    )
    counts = Composition()
    for dataset_id, source, category, status, n in rows:
        counts[(dataset_id, source or "", category or "", status)] += n
    return counts


def quota_bars(collection: Collection, held_by: Composition) -> dict[str, dict[str, Any]]:
    """Per source and per category: what the collection holds of each group against its
    quota, quota groups first, then the fullest."""
    quotas = collection.quotas or {}
    bars: dict[str, dict[str, Any]] = {}
    for field in service.GROUP_FIELDS:
        held = held_by.by(field)
        wanted: dict[str, int] = quotas.get(field, {})
        groups = sorted(
            set(held) | set(wanted), key=lambda g: (g not in wanted, -held.get(g, 0), g)
        )
        rows = [
            {
                "group": group,
                "held": held.get(group, 0),
                "quota": wanted.get(group),
                "full": group in wanted and held.get(group, 0) >= wanted[group],
                "over": group in wanted and held.get(group, 0) > wanted[group],
            }
            for group in groups
        ]
        bars[field] = {
            "rows": rows[:GROUP_LIMIT],
            "more": len(rows) - GROUP_LIMIT if len(rows) > GROUP_LIMIT else 0,
            "has_quotas": bool(wanted),
        }
    return bars


def status_counts(held_by: Composition) -> dict[str, int]:
    """How many of the collection's examples are candidates, accepted and rejected."""
    counts = held_by.by("status")
    return {status.value: counts.get(status.value, 0) for status in ExampleStatus}


def pool_datasets(
    session: Session, collection: Collection, held_by: Composition | None = None
) -> list[Dataset]:
    """The datasets the collection draws from: those its recipes read and those its items
    come from."""
    named = {r["dataset"] for r in collection.recipes or [] if r.get("dataset")}
    if held_by is None:
        item_datasets: Any = (
            select(Example.dataset_id)
            .distinct()
            .join(CollectionItem, CollectionItem.example_id == Example.id)
            .where(CollectionItem.collection_id == collection.id)
        )
    else:
        item_datasets = list(held_by.by("dataset_id"))
    query = select(Dataset).where(or_(Dataset.name.in_(named), Dataset.id.in_(item_datasets)))
    return list(session.scalars(query.order_by(Dataset.name)))


def _in_collection(collection: Collection) -> Any:
    return exists().where(
        CollectionItem.example_id == Example.id, CollectionItem.collection_id == collection.id
    )


# ---------------------------------------------------------------- score distributions


@dataclass(frozen=True)
class _Range:
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


def _scored_values(scorer: Scorer) -> Select[Any]:
    return (
        select(Score.value)
        .join(Example, Example.content_hash == Score.content_hash)
        .where(Score.scorer_id == scorer.id, Score.state == ScoreState.OK.value)
    )


def _binned(session: Session, values: Select[Any], span: _Range) -> dict[str, Any]:
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
) -> _Range | None:
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
    return _Range(float(low), float(max(high, low)), bins)


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
) -> list[dict[str, Any]]:
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
    result = []
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
        result.append(
            {
                "scorer": scorer.name,
                "version": scorer.version,
                "pool": before,
                "selected": after,
                "sampled": len(drawn) if drawn is not None else None,
            }
            | _shares(span, before, after)
        )
    return result


def _values_of(
    session: Session, scorers: list[Scorer], hashes: list[str]
) -> dict[int, list[float]]:
    """Scorer id -> the ok values for these contents, one per entry (a repeat counts again)."""
    found = scores_of(session, hashes, [s.id for s in scorers])
    ok = {key: value for key, (state, value) in found.items() if state == ScoreState.OK.value}
    return {s.id: [v for h in hashes if (v := ok.get((s.id, h))) is not None] for s in scorers}


def _counted(values: list[float], span: _Range) -> dict[str, Any]:
    """Count, mean and per-bin counts of values in memory, like `_binned` in the database."""
    counts = Counter(span.index(v) for v in values)
    return {
        "count": len(values),
        "mean": sum(values) / len(values) if values else None,
        "bins": [counts[i] for i in range(span.bins)],
    }


def _shares(span: _Range, pool: dict[str, Any], chosen: dict[str, Any]) -> dict[str, Any]:
    """Bins as shares of each side, so that a pool of millions and a set of a thousand draw
    on one axis."""
    bins = []
    for i in range(span.bins):
        low, high = span.edges(i)
        bins.append(
            {
                "low": low,
                "high": high,
                "pool": pool["bins"][i],
                "selected": chosen["bins"][i],
                "pool_share": pool["bins"][i] / pool["count"] if pool["count"] else 0.0,
                "selected_share": chosen["bins"][i] / chosen["count"] if chosen["count"] else 0.0,
            }
        )
    top = max([b["pool_share"] for b in bins] + [b["selected_share"] for b in bins] + [0.0])
    return {"bins": bins, "top": top}


# ---------------------------------------------------------------- review


def review_progress(session: Session, collection: Collection) -> list[dict[str, Any]]:
    """Per annotator, the decisions made in the collection's queue by action (undone ones do
    not count), the busiest first."""
    rows = session.execute(
        select(ReviewDecision.user_id, User.name, ReviewDecision.action, func.count())
        .outerjoin(User, User.id == ReviewDecision.user_id)
        .where(ReviewDecision.collection_id == collection.id, ReviewDecision.undone_at.is_(None))
        .group_by(ReviewDecision.user_id, User.name, ReviewDecision.action)
    )
    people: dict[int | None, dict[str, Any]] = {}
    for user_id, name, action, count in rows:
        person = people.setdefault(
            user_id, {"user": name or "(deleted user)", "counts": {}, "total": 0}
        )
        person["counts"][action] = count
        person["total"] += count
    return sorted(people.values(), key=lambda p: (-p["total"], p["user"]))


REVIEW_ACTIONS = [action.value for action in ReviewAction]


def agreement(session: Session, collection: Collection, bands: int = 10) -> list[dict[str, Any]]:
    """Per scorer, how often reviewers accepted the collection's examples in each score band:
    accepted / (accepted + rejected) among its reviewed examples."""
    rows = session.execute(
        select(Score.scorer_id, Score.value, Example.status, func.count())
        .join(Example, Example.content_hash == Score.content_hash)
        .join(CollectionItem, CollectionItem.example_id == Example.id)
        .where(
            CollectionItem.collection_id == collection.id,
            Score.state == ScoreState.OK.value,
            Example.status.in_(REVIEWED),
        )
        .group_by(Score.scorer_id, Score.value, Example.status)
    ).all()
    by_scorer: dict[int, list[tuple[float, str, int]]] = {}
    for scorer_id, value, status, count in rows:
        if value is not None:
            by_scorer.setdefault(scorer_id, []).append((value, status, count))
    scorers = {s.id: s for s in session.scalars(select(Scorer).where(Scorer.id.in_(by_scorer)))}
    result = []
    for scorer_id, values in sorted(by_scorer.items(), key=lambda kv: scorers[kv[0]].name):
        scorer = scorers[scorer_id]
        recipe = recipe_from_scorer(scorer)
        low = recipe.low if recipe.low is not None else min(v for v, _, _ in values)
        high = recipe.high if recipe.high is not None else max(v for v, _, _ in values)
        span = _Range(float(low), float(max(high, low)), bands)
        tally = [Counter[str]() for _ in range(bands)]
        for value, status, count in values:
            tally[span.index(value)][status] += count
        result.append(
            {"scorer": scorer.name, "version": scorer.version, "bands": _bands(span, tally)}
        )
    return result


def _bands(span: _Range, tally: list[Counter[str]]) -> list[dict[str, Any]]:
    bands = []
    for i, counts in enumerate(tally):
        accepted, rejected = counts[REVIEWED[0]], counts[REVIEWED[1]]
        low, high = span.edges(i)
        reviewed = accepted + rejected
        bands.append(
            {
                "low": low,
                "high": high,
                "accepted": accepted,
                "rejected": rejected,
                "rate": accepted / reviewed if reviewed else None,
            }
        )
    return bands


# ---------------------------------------------------------------- items, pick list, jobs


def item_page(
    session: Session, collection: Collection, after: int | None = None, limit: int = 25
) -> tuple[list[dict[str, Any]], int | None]:
    """One page of the collection's items in the order they were added (keyset on the item
    id), with who or which recipe added each and why."""
    query = (
        select(CollectionItem, Example, User.name)
        .join(Example, Example.id == CollectionItem.example_id)
        .outerjoin(User, User.id == CollectionItem.added_by_id)
        .where(CollectionItem.collection_id == collection.id)
    )
    if after is not None:
        query = query.where(CollectionItem.id > after)
    rows = session.execute(query.order_by(CollectionItem.id).limit(limit + 1)).all()
    items = [{"item": item, "example": example, "added_by": name} for item, example, name in rows]
    next_after = rows[limit - 1][0].id if len(rows) > limit else None
    return items[:limit], next_after


def pick_list(
    session: Session,
    collection: Collection,
    dataset: Dataset,
    *,
    q: str = "",
    source: str = "",
    after: int | None = None,
    limit: int = 20,
) -> tuple[list[Example], int | None]:
    """One page (keyset on the id) of the dataset's examples that are not in the collection,
    optionally with the words of `q` in their text and from one source."""
    query = _pickable(collection, dataset, q, source)
    if after is not None:
        query = query.where(Example.id > after)
    rows = list(session.scalars(query.order_by(Example.id).limit(limit + 1)))
    next_after = rows[limit - 1].id if len(rows) > limit else None
    return rows[:limit], next_after


def _pickable(collection: Collection, dataset: Dataset, q: str, source: str) -> Select[Any]:
    query = select(Example).where(Example.dataset_id == dataset.id, ~_in_collection(collection))
    if source:
        query = query.where(Example.source == source)
    if q:
        query = query.where(search_condition(q))
    return query


def pick_similar(
    session: Session,
    collection: Collection,
    dataset: Dataset,
    text: str,
    *,
    q: str = "",
    source: str = "",
    limit: int = 20,
) -> list[tuple[Example, float]]:
    """The `limit` examples of the pick list nearest to the sentence `text` by embedding, with
    their cosine, best first; InvalidInput when the model has no vectors."""
    ids = _pickable(collection, dataset, q, source).with_only_columns(Example.id)
    return by_ids(session, similar_to(session, ids, text, None, limit))


def collection_jobs(session: Session, collection: Collection, limit: int = 20) -> list[Job]:
    """The newest selection jobs that ran into this collection."""
    query = (
        select(Job)
        .where(Job.kind == "select", Job.params["collection_id"].as_integer() == collection.id)
        .order_by(Job.id.desc())
        .limit(limit)
    )
    return list(session.scalars(query))


def dataset_names(session: Session, ids: set[int | None]) -> dict[int, str]:
    """Dataset id -> name for these ids."""
    wanted = [i for i in ids if i is not None]
    if not wanted:
        return {}
    rows = session.execute(select(Dataset.id, Dataset.name).where(Dataset.id.in_(wanted)))
    return {dataset_id: name for dataset_id, name in rows}


def snapshot_counts(session: Session) -> dict[int, int]:
    """Collection id -> how many snapshots it has."""
    rows = session.execute(
        select(Snapshot.collection_id, func.count()).group_by(Snapshot.collection_id)
    )
    return {collection_id: n for collection_id, n in rows}


def collection_snapshot(session: Session, collection: Collection, snapshot_id: int) -> Snapshot:
    """A snapshot of this collection; another collection's answers NotFound like a missing one."""
    snapshot = session.get(Snapshot, snapshot_id)
    if snapshot is None or snapshot.collection_id != collection.id:
        raise NotFound(f"no snapshot {snapshot_id} of collection {collection.name!r}")
    return snapshot
