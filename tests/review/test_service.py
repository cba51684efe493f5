"""Review queues, leases, decisions, edits with conflicts, written examples and undo."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.collections.service import add_items, create_collection
from app.models import Example, ReviewAction, ReviewDecision, ReviewLease, Revision
from app.models.base import utcnow
from app.platform.errors import Conflict, InvalidInput, NotFound
from app.review import queue as queues
from app.review import service
from tests.factories import make_dataset, make_example, make_user


@pytest.fixture
def pool(session: Session) -> list[Example]:
    dataset = make_dataset(session)
    return [make_example(session, dataset, i, source="web" if i % 2 else "books") for i in range(6)]


def dataset_queue(session: Session, example: Example, **filters: str) -> queues.Queue:
    return queues.open_queue(session, dataset=example.dataset.name, **filters)


def test_two_annotators_are_never_given_the_same_example(
    session: Session, pool: list[Example]
) -> None:
    ann, bob = make_user(session), make_user(session)
    queue = dataset_queue(session, pool[0])
    first = queues.next_example(session, queue, ann)
    second = queues.next_example(session, queue, bob)
    assert first is not None and second is not None
    assert (first.id, second.id) == (pool[0].id, pool[1].id)
    # Asking again (a reload, a second tab) gives back the example already held.
    assert queues.next_example(session, queue, ann) is first
    assert [e.id for e in queues.upcoming(session, queue, bob)] == [e.id for e in pool[1:]]


def test_an_expired_lease_lets_someone_else_take_the_example(
    session: Session, pool: list[Example]
) -> None:
    ann, bob = make_user(session), make_user(session)
    queue = dataset_queue(session, pool[0])
    assert queues.next_example(session, queue, ann) is pool[0]
    session.execute(update(ReviewLease).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert queues.next_example(session, queue, bob) is pool[0]
    assert session.get(ReviewLease, pool[0].id).user_id == bob.id  # type: ignore[union-attr]


def test_filters_narrow_the_queue(session: Session, pool: list[Example]) -> None:
    ann = make_user(session)
    books = dataset_queue(session, pool[0], source="books")
    assert [e.id for e in queues.upcoming(session, books, ann)] == [
        pool[0].id,
        pool[2].id,
        pool[4].id,
    ]
    number_three = dataset_queue(session, pool[0], q="number 3")
    assert [e.id for e in queues.upcoming(session, number_three, ann)] == [pool[3].id]
    assert queues.count_waiting(session, books, ann) == (3, False)
    with pytest.raises(InvalidInput, match="status"):
        dataset_queue(session, pool[0], status="maybe")
    with pytest.raises(InvalidInput, match="collection or a dataset"):
        queues.open_queue(session)


def test_a_searched_queue_is_counted_to_a_hundred(session: Session) -> None:
    dataset = make_dataset(session)
    for i in range(queues.SEARCHED_COUNT_CAP + 1):
        make_example(session, dataset, i)
    ann = make_user(session)
    searched = queues.open_queue(session, dataset=dataset.name, q="number")
    assert queues.count_waiting(session, searched, ann) == (100, True)  # "100+"
    whole = queues.open_queue(session, dataset=dataset.name)
    assert queues.count_waiting(session, whole, ann) == (101, False)


def test_a_collection_queue_holds_only_its_items(session: Session, pool: list[Example]) -> None:
    lead, ann = make_user(session, "lead"), make_user(session)
    collection = create_collection(session, "lima-10", target_size=10, user=lead)
    add_items(session, collection, [pool[3].id, pool[5].id], user=lead)
    queue = queues.open_queue(session, collection="lima-10")
    assert [e.id for e in queues.upcoming(session, queue, ann)] == [pool[3].id, pool[5].id]
    decision = service.decide(
        session, ann, pool[3].id, ReviewAction.ACCEPT, version=pool[3].version, queue=queue
    )
    assert decision.collection_id == collection.id


def test_accept_reject_and_skip(session: Session, pool: list[Example]) -> None:
    ann = make_user(session)
    queue = dataset_queue(session, pool[0])
    service.decide(session, ann, pool[0].id, ReviewAction.ACCEPT, version=1, queue=queue)
    assert pool[0].status == "accepted"
    with pytest.raises(InvalidInput, match="why"):
        service.decide(session, ann, pool[1].id, ReviewAction.REJECT, version=1, reason="  ")
    service.decide(session, ann, pool[1].id, ReviewAction.REJECT, version=1, reason="wrong")
    assert pool[1].status == "rejected"
    service.decide(session, ann, pool[2].id, ReviewAction.SKIP, version=1, queue=queue)
    assert pool[2].status == "candidate"
    # Decided examples leave the queue; a skipped one leaves it for the one who skipped it.
    nxt = queues.next_example(session, queue, ann)
    assert nxt is pool[3]
    other = make_user(session)
    assert pool[2].id in [e.id for e in queues.upcoming(session, queue, other)]
    assert session.scalar(select(ReviewLease).where(ReviewLease.example_id == pool[0].id)) is None


def test_a_decision_on_a_stale_version_or_held_example_is_refused(
    session: Session, pool: list[Example]
) -> None:
    ann, bob = make_user(session), make_user(session)
    queue = dataset_queue(session, pool[0])
    queues.next_example(session, queue, ann)
    with pytest.raises(Conflict, match=f"being reviewed by {ann.name} until"):
        service.decide(session, bob, pool[0].id, ReviewAction.ACCEPT, version=1)
    service.save_turns(session, ann, pool[0].id, {1: "A better answer."}, version=1)
    with pytest.raises(service.StaleVersion):
        service.decide(session, ann, pool[0].id, ReviewAction.ACCEPT, version=1)
    assert pool[0].status == "candidate"
    with pytest.raises(NotFound):
        service.decide(session, ann, 10**9, ReviewAction.ACCEPT, version=1)


def test_an_edit_keeps_a_revision_and_a_stale_edit_writes_nothing(
    session: Session, pool: list[Example]
) -> None:
    ann, bob = make_user(session), make_user(session)
    example = pool[0]
    service.save_turns(session, ann, example.id, {1: "Edited by Ann."}, version=1, reason="typo")
    assert example.version == 2 and example.output == "Edited by Ann."
    assert example.messages[1]["content"] == "Edited by Ann."
    with pytest.raises(Conflict):  # Bob cannot save while Ann holds it
        service.save_turns(session, bob, example.id, {1: "Bob's."}, version=2)
    session.execute(update(ReviewLease).values(expires_at=utcnow() - timedelta(seconds=1)))
    with pytest.raises(service.StaleVersion):
        service.save_turns(session, bob, example.id, {1: "Bob's stale edit."}, version=1)
    assert example.output == "Edited by Ann." and example.version == 2
    assert service.original_messages(session, example)[1]["content"] == "The number is 0."
    revisions = session.scalars(select(Revision).where(Revision.example_id == example.id)).all()
    assert [r.reason for r in revisions] == ["typo"]
    with pytest.raises(InvalidInput, match="no turn 7"):
        service.save_turns(session, ann, example.id, {7: "x"}, version=2)
    with pytest.raises(InvalidInput, match="empty"):
        service.save_turns(session, ann, example.id, {1: " "}, version=2)


def test_undo_puts_back_status_and_text(session: Session, pool: list[Example]) -> None:
    ann = make_user(session)
    queue = dataset_queue(session, pool[0])
    service.save_turns(
        session, ann, pool[0].id, {1: "Written anew."}, version=1, action=ReviewAction.WRITE
    )
    service.decide(session, ann, pool[0].id, ReviewAction.REJECT, version=2, reason="bad")
    assert service.undo_last(session, ann) == pool[0].id
    assert pool[0].status == "candidate" and pool[0].output == "Written anew."
    assert service.undo_last(session, ann) == pool[0].id
    assert pool[0].output == "The number is 0."
    assert session.get(ReviewLease, pool[0].id).user_id == ann.id  # type: ignore[union-attr]
    with pytest.raises(NotFound, match="nothing to undo"):
        service.undo_last(session, ann)
    undone = session.scalars(select(ReviewDecision.undone_at)).all()
    assert len(undone) == 2 and all(undone)
    assert queue.name == pool[0].dataset.name


def test_undo_is_refused_once_someone_else_decided(session: Session, pool: list[Example]) -> None:
    ann, bob = make_user(session), make_user(session)
    service.decide(session, ann, pool[0].id, ReviewAction.ACCEPT, version=1)
    service.decide(session, bob, pool[0].id, ReviewAction.REJECT, version=2, reason="no")
    with pytest.raises(Conflict, match="decided again"):
        service.undo_last(session, ann)


def test_a_written_example_is_accepted_added_and_undone_by_deleting(
    session: Session, pool: list[Example]
) -> None:
    lead, ann = make_user(session, "lead"), make_user(session)
    create_collection(session, "hand", target_size=5, user=lead)
    queue = queues.open_queue(session, collection="hand")
    draft = service.NewExample("How do tides work?", "The moon's gravity pulls the oceans.")
    written = service.write_example(session, ann, pool[0].dataset, draft, queue)
    assert (written.origin, written.status, written.source) == ("written", "accepted", "human")
    assert [
        e.id
        for e in queues.upcoming(
            session, queues.open_queue(session, collection="hand", status="accepted"), ann
        )
    ] == [written.id]
    with pytest.raises(Conflict, match="already has this prompt"):
        service.write_example(session, ann, pool[0].dataset, draft, queue)
    with pytest.raises(InvalidInput, match="answer is empty"):
        service.write_example(session, ann, pool[0].dataset, service.NewExample("Q?", " "))
    assert service.undo_last(session, ann) is None
    session.flush()
    assert session.get(Example, written.id) is None
