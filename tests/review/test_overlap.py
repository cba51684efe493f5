"""Several annotators per example: each example goes to `overlap` different people, their
decisions settle its status by the collection's rule, disputes wait for a lead (issue 13)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.collections.service import add_items, create_collection, update_review_settings
from app.models import Collection, Example, ReviewAction, ReviewDecision, User
from app.platform.errors import Conflict, Forbidden, InvalidInput
from app.review import queue as queues
from app.review import service
from tests.factories import make_dataset, make_example, make_user, unique


def _collection(session: Session, n: int, overlap: int, rule: str = "majority") -> Collection:
    dataset = make_dataset(session)
    examples = [make_example(session, dataset, i) for i in range(n)]
    collection = create_collection(session, unique("set"), overlap=overlap, consensus=rule)
    add_items(session, collection, [e.id for e in examples])
    return collection


def _review_all(session: Session, collection: Collection, user: User, action: str) -> list[int]:
    """Take and decide every example the queue hands this user; their ids in order."""
    queue = queues.open_queue(session, collection=collection.name, user=user)
    decided = []
    while (example := queues.next_example(session, queue, user)) is not None:
        reason = "off topic" if action == "reject" else ""
        service.decide(session, user, example.id, ReviewAction(action), version=example.version,
                       reason=reason, queue=queue)  # fmt: skip
        decided.append(example.id)
    return decided


def test_each_example_goes_to_overlap_different_annotators_and_no_more(session: Session) -> None:
    collection = _collection(session, 4, overlap=2)
    ann, bob, cat = (make_user(session) for _ in range(3))
    first = _review_all(session, collection, ann, "accept")
    assert len(first) == 4  # one vote each: all still open for a second person
    assert _review_all(session, collection, ann, "accept") == []  # never the same person twice
    second = _review_all(session, collection, bob, "accept")
    assert sorted(second) == sorted(first)
    assert _review_all(session, collection, cat, "accept") == []  # two votes each: done
    votes = session.scalar(
        select(func.count()).where(ReviewDecision.collection_id == collection.id)
    )
    assert votes == 8
    statuses = session.scalars(select(Example.status).where(Example.id.in_(first))).all()
    assert set(statuses) == {"accepted"}


@pytest.mark.parametrize(
    ("rule", "votes", "status"),
    [
        ("majority", ["accept", "accept", "reject"], "accepted"),
        ("majority", ["reject", "reject", "accept"], "rejected"),
        ("unanimous", ["accept", "accept", "reject"], "candidate"),
        ("unanimous", ["accept", "accept", "accept"], "accepted"),
    ],
)
def test_the_rule_settles_the_status_once_everyone_voted(
    session: Session, rule: str, votes: list[str], status: str
) -> None:
    collection = _collection(session, 1, overlap=3, rule=rule)
    people = [make_user(session) for _ in votes]
    for i, (person, vote) in enumerate(zip(people, votes, strict=True)):
        [decided] = _review_all(session, collection, person, vote)
        example = session.get(Example, decided)
        assert example is not None
        # Until the last vote the example stays unreviewed.
        assert example.status == (status if i == len(votes) - 1 else "candidate")


def test_a_lead_settles_what_the_annotators_disputed(session: Session) -> None:
    collection = _collection(session, 2, overlap=2)
    ann, bob = make_user(session), make_user(session)
    lead = make_user(session, "lead")
    [first, second] = _review_all(session, collection, ann, "accept")
    queue = queues.open_queue(session, collection=collection.name, user=bob)
    example = queues.next_example(session, queue, bob)
    assert example is not None and example.id == first
    service.decide(session, bob, first, ReviewAction.REJECT, version=example.version,
                   reason="wrong", queue=queue)  # fmt: skip
    assert session.get(Example, first).status == "candidate"  # type: ignore[union-attr]
    with pytest.raises(Forbidden, match="lead"):
        queues.open_queue(session, collection=collection.name, status="disputed", user=bob)
    disputed = queues.open_queue(session, collection=collection.name, status="disputed", user=lead)
    assert [e.id for e in queues.upcoming(session, disputed, lead)] == [first]
    taken = queues.next_example(session, disputed, lead)
    assert taken is not None and taken.id == first
    service.decide(session, lead, first, ReviewAction.ACCEPT, version=taken.version, queue=disputed)
    assert session.get(Example, first).status == "accepted"  # type: ignore[union-attr]
    assert queues.upcoming(session, disputed, lead) == []
    # An annotator cannot add a third vote to an example that has its two.
    cat = make_user(session)
    with pytest.raises(Conflict, match="a lead settles it"):
        queue_for_cat = queues.open_queue(session, collection=collection.name, user=cat)
        service.decide(session, cat, first, ReviewAction.REJECT,
                       version=taken.version, reason="no", queue=queue_for_cat)  # fmt: skip
    assert second not in [e.id for e in queues.upcoming(session, disputed, lead)]


def test_an_annotator_cannot_decide_outside_the_collections_queue(session: Session) -> None:
    collection = _collection(session, 1, overlap=2)
    example = session.scalars(select(Example).order_by(Example.id.desc())).first()
    assert example is not None
    ann = make_user(session)
    with pytest.raises(Conflict, match=f"in collection '{collection.name}'"):
        service.decide(session, ann, example.id, ReviewAction.ACCEPT, version=example.version)


def test_undoing_the_settling_vote_reopens_the_example(session: Session) -> None:
    collection = _collection(session, 1, overlap=2)
    ann, bob = make_user(session), make_user(session)
    [example_id] = _review_all(session, collection, ann, "accept")
    _review_all(session, collection, bob, "accept")
    assert session.get(Example, example_id).status == "accepted"  # type: ignore[union-attr]
    assert service.undo_last(session, bob) == example_id
    assert session.get(Example, example_id).status == "candidate"  # type: ignore[union-attr]


def test_review_settings_are_checked(session: Session) -> None:
    collection = _collection(session, 1, overlap=1)
    with pytest.raises(InvalidInput, match="overlap"):
        update_review_settings(collection, overlap=0)
    with pytest.raises(InvalidInput, match="consensus"):
        update_review_settings(collection, consensus="loudest")
    assert update_review_settings(collection, overlap=3).overlap == 3
    with pytest.raises(InvalidInput, match="several annotators"):
        other = _collection(session, 1, overlap=1)
        queues.open_queue(session, collection=other.name, status="disputed")
