"""What the lead's collection dashboard reads: quota progress, the pool, items, the pick list and
jobs (score distributions are in `distributions`, review progress and agreement in
`review_stats`).

Everything that scans the pool (which may hold millions of examples) is aggregated in SQL and
read by a fragment of its own, so that the dashboard itself only touches the collection."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, exists, func, or_, select
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
    Snapshot,
    User,
)
from app.platform.errors import NotFound
from app.platform.vectors.search import similar_to

GROUP_LIMIT = 40  # quota bars shown per field; the rest are summed up


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


@dataclass(frozen=True)
class QuotaRow:
    """What the collection holds of one group against its quota (None: no quota)."""

    group: str
    held: int
    quota: int | None
    full: bool
    over: bool


@dataclass(frozen=True)
class QuotaBars:
    """One grouping field's bars: the first GROUP_LIMIT groups and how many more there are."""

    rows: list[QuotaRow]
    more: int
    has_quotas: bool


def quota_bars(collection: Collection, held_by: Composition) -> dict[str, QuotaBars]:
    """Per source and per category: what the collection holds of each group against its
    quota, quota groups first, then the fullest."""
    quotas = collection.quotas or {}
    bars: dict[str, QuotaBars] = {}
    for field in service.GROUP_FIELDS:
        held = held_by.by(field)
        wanted: dict[str, int] = quotas.get(field, {})
        groups = sorted(
            set(held) | set(wanted), key=lambda g: (g not in wanted, -held.get(g, 0), g)
        )
        rows = [
            QuotaRow(
                group=group,
                held=held.get(group, 0),
                quota=wanted.get(group),
                full=group in wanted and held.get(group, 0) >= wanted[group],
                over=group in wanted and held.get(group, 0) > wanted[group],
            )
            for group in groups
        ]
        bars[field] = QuotaBars(
            rows=rows[:GROUP_LIMIT],
            more=len(rows) - GROUP_LIMIT if len(rows) > GROUP_LIMIT else 0,
            has_quotas=bool(wanted),
        )
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


# ---------------------------------------------------------------- items, pick list, jobs


@dataclass(frozen=True)
class ItemRow:
    """An item of the collection with its example and who added it (None: a recipe)."""

    item: CollectionItem
    example: Example
    added_by: str | None


def item_page(
    session: Session, collection: Collection, after: int | None = None, limit: int = 25
) -> tuple[list[ItemRow], int | None]:
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
    items = [ItemRow(item, example, name) for item, example, name in rows]
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
    conditions: Sequence[Any] = (),
) -> tuple[list[Example], int | None]:
    """One page (keyset on the id) of the dataset's examples that are not in the collection,
    optionally with the words of `q` in their text, from one source, and meeting `conditions`
    (score filters)."""
    query = pickable(collection, dataset, q, source, conditions)
    if after is not None:
        query = query.where(Example.id > after)
    rows = list(session.scalars(query.order_by(Example.id).limit(limit + 1)))
    next_after = rows[limit - 1].id if len(rows) > limit else None
    return rows[:limit], next_after


def pickable(
    collection: Collection,
    dataset: Dataset,
    q: str = "",
    source: str = "",
    conditions: Sequence[Any] = (),
) -> Select[Any]:
    """The pick list's examples, filtered, in no order."""
    query = select(Example).where(
        Example.dataset_id == dataset.id, ~_in_collection(collection), *conditions
    )
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
    conditions: Sequence[Any] = (),
) -> list[tuple[Example, float]]:
    """The `limit` examples of the pick list nearest to the sentence `text` by embedding, with
    their cosine, best first; InvalidInput when the model has no vectors."""
    ids = pickable(collection, dataset, q, source, conditions).with_only_columns(Example.id)
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
