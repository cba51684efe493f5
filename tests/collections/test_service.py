"""Collections against a target size and quotas; snapshots frozen, content-addressed, compared."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.collections import service
from app.models import Example, SnapshotItem
from app.platform.errors import Conflict, InvalidInput, NotFound
from tests.factories import make_dataset, make_example, unique


def _examples(session: Session, n: int, **fields: object) -> list[Example]:
    dataset = make_dataset(session)
    return [make_example(session, dataset, i, **fields) for i in range(n)]


def test_items_are_added_in_order_once_and_up_to_the_target(session: Session) -> None:
    examples = _examples(session, 5)
    ids = [e.id for e in examples]
    collection = service.create_collection(session, unique("set"), target_size=4)
    assert service.add_items(session, collection, ids[:2], recipe="by-hand", reason="good") == 2
    assert service.add_items(session, collection, [ids[1], ids[2]]) == 1  # one was in already
    assert service.item_ids(session, collection) == ids[:3]
    with pytest.raises(Conflict, match="room for 1, not 2"):
        service.add_items(session, collection, ids[3:])
    assert service.remove_items(session, collection, [ids[0]]) == 1
    assert service.add_items(session, collection, ids[3:]) == 2
    assert service.collection_size(session, collection) == 4
    with pytest.raises(NotFound, match="no example 999999"):
        service.add_items(session, collection, [999999])


def test_quotas_are_checked(session: Session) -> None:
    a = _examples(session, 3, source="wikihow")
    b = _examples(session, 3, source="stackexchange")
    with pytest.raises(InvalidInput, match="quotas"):
        service.create_collection(
            session, unique("set"), target_size=3, quotas={"source": {"x": 4}}
        )
    with pytest.raises(InvalidInput, match="group by"):
        service.create_collection(session, unique("set"), quotas={"colour": {"x": 1}})
    collection = service.create_collection(
        session, unique("set"), target_size=10, quotas={"source": {"wikihow": 2}}
    )
    service.add_items(session, collection, [e.id for e in b])  # no quota on this source
    with pytest.raises(Conflict, match="quota of 'wikihow'"):
        service.add_items(session, collection, [e.id for e in a])
    service.add_items(session, collection, [e.id for e in a[:2]])
    assert service.group_counts(session, collection, "source") == {"wikihow": 2, "stackexchange": 3}


def test_names_are_checked(session: Session) -> None:
    name = unique("set")
    service.create_collection(session, name)
    with pytest.raises(Conflict):
        service.create_collection(session, name)
    with pytest.raises(InvalidInput, match="name"):
        service.create_collection(session, "a/b")
    with pytest.raises(NotFound):
        service.get_collection(session, unique("missing"))


def test_a_snapshot_freezes_content_and_the_same_content_gives_it_back(session: Session) -> None:
    examples = _examples(session, 3)
    collection = service.create_collection(session, unique("set"))
    service.add_items(session, collection, [e.id for e in examples])
    snapshot, created = service.create_snapshot(session, collection, note="first")
    assert created and snapshot.example_count == 3 and len(snapshot.digest) == 64
    again, created_again = service.create_snapshot(session, collection)
    assert again.id == snapshot.id and not created_again
    # A live edit does not reach the frozen copy, and makes the next snapshot differ.
    examples[0].output = "rewritten"
    examples[0].content_hash = "0" * 32
    session.flush()
    frozen = session.scalars(
        select(SnapshotItem.output)
        .where(SnapshotItem.snapshot_id == snapshot.id)
        .order_by(SnapshotItem.position)
    ).all()
    assert frozen[0] != "rewritten"
    service.remove_items(session, collection, [examples[1].id])
    extra = _examples(session, 1)[0]
    service.add_items(session, collection, [extra.id])
    second, _ = service.create_snapshot(session, collection)
    assert second.id != snapshot.id
    assert service.compare_snapshots(session, snapshot, second) == {
        "added": [extra.id],
        "removed": [examples[1].id],
        "edited": [examples[0].id],
    }
    assert [s.id for s in service.list_snapshots(session, collection)] == [second.id, snapshot.id]


def test_a_snapshot_never_freezes_a_rejected_example_and_keeps_each_status(
    session: Session,
) -> None:
    """Issue 13: a snapshot of lima-1000 held two examples the annotator had rejected."""
    accepted, unreviewed, rejected = _examples(session, 3)
    accepted.status, rejected.status = "accepted", "rejected"
    collection = service.create_collection(session, unique("set"))
    service.add_items(session, collection, [accepted.id, unreviewed.id, rejected.id])
    snapshot, _ = service.create_snapshot(session, collection)
    frozen = session.execute(
        select(SnapshotItem.example_id, SnapshotItem.status)
        .where(SnapshotItem.snapshot_id == snapshot.id)
        .order_by(SnapshotItem.position)
    ).all()
    assert [tuple(row) for row in frozen] == [
        (accepted.id, "accepted"),
        (unreviewed.id, "candidate"),
    ]
    assert (snapshot.only_accepted, snapshot.left_out) == (False, {"rejected": 1})
    only, _ = service.create_snapshot(session, collection, only_accepted=True)
    assert only.example_count == 1 and only.only_accepted
    assert only.left_out == {"rejected": 1, "unreviewed": 1}
    # A decision made since changes what ships: the same items, another snapshot.
    unreviewed.status = "accepted"
    session.flush()
    after, created = service.create_snapshot(session, collection)
    assert created and after.id != snapshot.id


def test_a_collection_with_nothing_freezable_says_what_it_left_out(session: Session) -> None:
    examples = _examples(session, 2)
    examples[0].status = "rejected"
    collection = service.create_collection(session, unique("set"))
    service.add_items(session, collection, [e.id for e in examples])
    with pytest.raises(Conflict, match="1 rejected, 1 unreviewed"):
        service.create_snapshot(session, collection, only_accepted=True)


def test_an_empty_collection_cannot_be_frozen(session: Session) -> None:
    collection = service.create_collection(session, unique("set"))
    with pytest.raises(Conflict, match="empty"):
        service.create_snapshot(session, collection)
