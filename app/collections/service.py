"""Collections (the set being assembled, against a target size and quotas) and snapshots
(immutable, content-addressed copies that export, training and evaluation use)."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from app.datasets.service import CONTENT_FIELDS, NAME_PATTERN
from app.models import (
    Collection,
    CollectionItem,
    Example,
    ExampleStatus,
    Snapshot,
    SnapshotItem,
    User,
)
from app.platform.db import conflict_insert
from app.platform.errors import Conflict, InvalidInput, NotFound
from app.platform.snapshots import find_snapshot

GROUP_FIELDS = ("source", "category")


def create_collection(
    session: Session,
    name: str,
    *,
    target_size: int = 1000,
    quotas: dict[str, dict[str, int]] | None = None,
    description: str = "",
    guidelines: str = "",
    user: User | None = None,
    overlap: int = 1,
    consensus: str = "majority",
) -> Collection:
    """A new, empty collection; the name must be free."""
    _check_review_settings(overlap, consensus)
    name = name.strip()
    if not NAME_PATTERN.match(name):
        raise InvalidInput(
            "a collection name must be 1 to 200 printable characters without '/'", field="name"
        )
    if target_size < 1:
        raise InvalidInput("target_size: must be at least 1", field="target_size")
    _check_quotas(quotas or {}, target_size)
    if session.scalar(select(Collection.id).where(Collection.name == name)) is not None:
        raise Conflict(f"a collection called {name!r} exists already")
    collection = Collection(
        name=name,
        target_size=target_size,
        quotas=quotas or {},
        description=description,
        guidelines=guidelines,
        recipes=[],
        created_by_id=user.id if user else None,
        overlap=overlap,
        consensus=consensus,
    )
    session.add(collection)
    session.flush()
    return collection


CONSENSUS_RULES = ("majority", "unanimous")
MAX_OVERLAP = 10


def _check_review_settings(overlap: int, consensus: str) -> None:
    if not 1 <= overlap <= MAX_OVERLAP:
        raise InvalidInput(
            f"overlap: the annotators per example must be 1 to {MAX_OVERLAP}", field="overlap"
        )
    if consensus not in CONSENSUS_RULES:
        raise InvalidInput(
            f"consensus: choose {' or '.join(CONSENSUS_RULES)}, not {consensus!r}",
            field="consensus",
        )


def update_review_settings(
    collection: Collection, *, overlap: int | None = None, consensus: str | None = None
) -> Collection:
    """Change how many annotators decide each example and the rule that turns their decisions
    into its status; decisions already made stay and count."""
    overlap = collection.overlap if overlap is None else overlap
    consensus = collection.consensus if consensus is None else consensus
    _check_review_settings(overlap, consensus)
    collection.overlap, collection.consensus = overlap, consensus
    return collection


def _check_quotas(quotas: dict[str, dict[str, int]], target_size: int) -> None:
    for field, counts in quotas.items():
        if field not in GROUP_FIELDS:
            raise InvalidInput(
                f"quotas: group by one of {GROUP_FIELDS}, not {field!r}", field="quotas"
            )
        if any(not isinstance(n, int) or n < 0 for n in counts.values()):
            raise InvalidInput(f"quotas.{field}: counts must be whole numbers >= 0", field="quotas")
        if sum(counts.values()) > target_size:
            raise InvalidInput(
                f"quotas.{field}: they add up to {sum(counts.values())}, "
                f"more than the target size {target_size}",
                field="quotas",
            )


def get_collection(session: Session, name: str) -> Collection:
    """The collection called `name`; NotFound otherwise."""
    collection = session.scalar(select(Collection).where(Collection.name == name))
    if collection is None:
        raise NotFound(f"no collection called {name!r}")
    return collection


def list_collections(session: Session) -> list[tuple[Collection, int]]:
    """Every collection with how many examples it holds, by name."""
    size = (
        select(func.count())
        .where(CollectionItem.collection_id == Collection.id)
        .correlate(Collection)
        .scalar_subquery()
    )
    return [(c, n) for c, n in session.execute(select(Collection, size).order_by(Collection.name))]


def collection_size(session: Session, collection: Collection) -> int:
    """How many examples the collection holds."""
    query = select(func.count()).where(CollectionItem.collection_id == collection.id)
    return session.scalar(query) or 0


def item_ids(session: Session, collection: Collection) -> list[int]:
    """The collection's example ids in the order they were added."""
    query = (
        select(CollectionItem.example_id)
        .where(CollectionItem.collection_id == collection.id)
        .order_by(CollectionItem.id)
    )
    return list(session.scalars(query))


def group_counts(session: Session, collection: Collection, field: str) -> dict[str, int]:
    """How many of the collection's examples each source (or category) has."""
    column = getattr(Example, field)
    rows = session.execute(
        select(column, func.count())
        .join(CollectionItem, CollectionItem.example_id == Example.id)
        .where(CollectionItem.collection_id == collection.id)
        .group_by(column)
    )
    return {value or "": n for value, n in rows}


def add_items(
    session: Session,
    collection: Collection,
    example_ids: Sequence[int],
    *,
    user: User | None = None,
    recipe: str | None = None,
    reason: str = "",
) -> int:
    """Add examples (in order, skipping those already in) up to the target size and the
    quotas; returns how many were added. Adding more than fits is refused, naming why."""
    if not example_ids:
        return 0
    present = set(item_ids(session, collection))
    wanted = list(dict.fromkeys(i for i in example_ids if i not in present))
    found = set(session.scalars(select(Example.id).where(Example.id.in_(wanted))))
    missing = [i for i in wanted if i not in found]
    if missing:
        raise NotFound(
            f"no example {missing[0]}"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
        )
    room = collection.target_size - len(present)
    if len(wanted) > room:
        raise Conflict(
            f"collection {collection.name!r} holds {len(present)} of its target "
            f"{collection.target_size}: room for {room}, not {len(wanted)}",
            room=room,
        )
    _check_quota_room(session, collection, wanted)
    rows = [
        {
            "collection_id": collection.id,
            "example_id": example_id,
            "added_by_id": user.id if user else None,
            "recipe": recipe,
            "reason": reason,
        }
        for example_id in wanted
    ]
    if rows:
        statement = conflict_insert(CollectionItem)
        statement = statement.on_conflict_do_nothing(index_elements=["collection_id", "example_id"])
        session.execute(statement, rows)
    return len(rows)


def _check_quota_room(session: Session, collection: Collection, wanted: list[int]) -> None:
    for field, quotas in (collection.quotas or {}).items():
        column = getattr(Example, field)
        adding = Counter(
            value or "" for value in session.scalars(select(column).where(Example.id.in_(wanted)))
        )
        held = group_counts(session, collection, field)
        for group, count in adding.items():
            if group in quotas and held.get(group, 0) + count > quotas[group]:
                raise Conflict(
                    f"the {field} quota of {group!r} in {collection.name!r} is {quotas[group]}: "
                    f"it holds {held.get(group, 0)}, adding {count} would pass it",
                    field=field,
                    group=group,
                )


def remove_items(session: Session, collection: Collection, example_ids: Sequence[int]) -> int:
    """Take examples out of the collection; returns how many were in it."""
    result = session.execute(
        delete(CollectionItem).where(
            CollectionItem.collection_id == collection.id,
            CollectionItem.example_id.in_(list(example_ids)),
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def record_recipe(collection: Collection, recipe: dict[str, Any]) -> None:
    """Remember a selection recipe that fed the collection."""
    collection.recipes = [*(collection.recipes or []), recipe]


# ---------------------------------------------------------------- snapshots


def _digest(rows: Sequence[dict[str, Any]]) -> str:
    """A hash of the items' content and review status in order: equal content, equal digest."""
    sha = hashlib.sha256()
    for row in rows:
        sha.update(row["content_hash"].encode())
        for field in ("source", "category", "status"):
            sha.update(b"\x1f" + (row[field] or "").encode())
        sha.update(b"\x1e")
    return sha.hexdigest()


# What a snapshot calls the examples it leaves out, by review status.
LEFT_OUT_AS = {
    ExampleStatus.CANDIDATE.value: "unreviewed",
    ExampleStatus.REJECTED.value: "rejected",
}


def frozen_statuses(only_accepted: bool) -> set[str]:
    """The review statuses a snapshot takes: never rejected, and unreviewed ones unless
    `only_accepted`."""
    if only_accepted:
        return {ExampleStatus.ACCEPTED.value}
    return {ExampleStatus.ACCEPTED.value, ExampleStatus.CANDIDATE.value}


def create_snapshot(
    session: Session,
    collection: Collection,
    *,
    note: str = "",
    user: User | None = None,
    only_accepted: bool = False,
) -> tuple[Snapshot, bool]:
    """Freeze the collection's examples as they are now, each with its review status;
    (snapshot, created). Rejected examples are left out, and unreviewed ones too with
    `only_accepted`. The same content frozen again gives the existing snapshot back."""
    columns = [getattr(Example, field) for field in CONTENT_FIELDS]
    every = [
        dict(row._mapping)
        for row in session.execute(
            select(Example.id.label("example_id"), Example.status, *columns)
            .join(CollectionItem, CollectionItem.example_id == Example.id)
            .where(CollectionItem.collection_id == collection.id)
            .order_by(CollectionItem.id)
        )
    ]
    if not every:
        raise Conflict(f"collection {collection.name!r} is empty: nothing to freeze")
    taken = frozen_statuses(only_accepted)
    rows = [row for row in every if row["status"] in taken]
    left_out = dict(Counter(LEFT_OUT_AS[r["status"]] for r in every if r["status"] not in taken))
    if not rows:
        raise Conflict(
            f"collection {collection.name!r} has nothing to freeze: "
            + ", ".join(f"{n:,} {status}" for status, n in sorted(left_out.items()))
            + " (rejected examples are never frozen)"
        )
    digest = _digest(rows)
    existing = session.scalar(select(Snapshot).where(Snapshot.digest == digest))
    if existing is not None:
        return existing, False
    snapshot = Snapshot(
        collection_id=collection.id,
        digest=digest,
        example_count=len(rows),
        note=note,
        created_by_id=user.id if user else None,
        only_accepted=only_accepted,
        left_out=left_out,
    )
    session.add(snapshot)
    session.flush()
    items = [{**row, "snapshot_id": snapshot.id, "position": i} for i, row in enumerate(rows)]
    session.execute(insert(SnapshotItem), items)
    return snapshot, True


def get_snapshot(session: Session, ref: int | str) -> Snapshot:
    """A snapshot by its number or its digest (or a unique prefix of 8+ hex digits)."""
    return find_snapshot(session, ref)


def list_snapshots(session: Session, collection: Collection) -> list[Snapshot]:
    """A collection's snapshots, newest first."""
    query = select(Snapshot).where(Snapshot.collection_id == collection.id)
    return list(session.scalars(query.order_by(Snapshot.id.desc())))


def compare_snapshots(session: Session, old: Snapshot, new: Snapshot) -> dict[str, list[int]]:
    """What changed from `old` to `new`, by example: added, removed, and edited (same example,
    other content). Items whose example was deleted are matched by content."""

    def items(snapshot: Snapshot) -> dict[Any, str]:
        rows = session.execute(
            select(SnapshotItem.example_id, SnapshotItem.content_hash).where(
                SnapshotItem.snapshot_id == snapshot.id
            )
        )
        return {(example_id if example_id is not None else f"#{h}"): h for example_id, h in rows}

    before, after = items(old), items(new)
    return {
        "added": sorted(k for k in after.keys() - before.keys() if isinstance(k, int)),
        "removed": sorted(k for k in before.keys() - after.keys() if isinstance(k, int)),
        "edited": sorted(
            k for k in before.keys() & after.keys() if isinstance(k, int) and before[k] != after[k]
        ),
    }
