"""Snapshots: immutable, content-addressed copies of a collection, each example with its
review status, that export, training and evaluation use; and how two of them differ."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from app.datasets.service import CONTENT_FIELDS
from app.models import (
    Collection,
    CollectionItem,
    Example,
    ExampleStatus,
    Snapshot,
    SnapshotItem,
    User,
)
from app.platform.answers import answers_by_example
from app.platform.errors import Conflict
from app.platform.snapshots import find_snapshot


def _digest(rows: Sequence[dict[str, Any]]) -> str:
    """A hash of the items' content, review status and answers (where the collection asks
    questions) in order: equal content, equal digest."""
    sha = hashlib.sha256()
    for row in rows:
        sha.update(row["content_hash"].encode())
        for field in ("source", "category", "status"):
            sha.update(b"\x1f" + (row[field] or "").encode())
        if row.get("answers"):  # frozen answers are part of what is frozen
            sha.update(b"\x1d" + orjson.dumps(row["answers"], option=orjson.OPT_SORT_KEYS))
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
    answers = answers_by_example(session, collection.id, [r["example_id"] for r in rows])
    for row in rows:
        row["answers"] = answers.get(row["example_id"])
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


def snapshot_prompts(
    session: Session, snapshot: Snapshot, example_ids: Sequence[int], width: int = 120
) -> dict[int, str]:
    """The first prompt of each of these examples as the snapshot froze it, cut to `width`."""
    rows = session.execute(
        select(SnapshotItem.example_id, SnapshotItem.messages).where(
            SnapshotItem.snapshot_id == snapshot.id, SnapshotItem.example_id.in_(example_ids)
        )
    )
    prompts: dict[int, str] = {}
    for example_id, messages in rows:
        if example_id is None:
            continue
        text = next((m["content"] for m in messages if m["role"] == "user"), "")
        prompts[example_id] = text if len(text) <= width else text[: width - 1] + "…"
    return prompts


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
