"""A lead's second pass: annotators' decisions and edits wait for a check; approve, fix and
approve, or send back with a note that the annotator sees, with the example back first in
their queue (issue 13)."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from app.collections.service import add_items, create_collection
from app.models import Collection, Example, ReviewAction, User
from app.platform.errors import Conflict, Forbidden, InvalidInput
from app.review import queue as queues
from app.review import second_pass, service
from tests.factories import make_dataset, make_example, make_user, unique


def _collection(session: Session, n: int, overlap: int = 1) -> Collection:
    dataset = make_dataset(session)
    examples = [make_example(session, dataset, i) for i in range(n)]
    collection = create_collection(session, unique("set"), overlap=overlap)
    add_items(session, collection, [e.id for e in examples])
    return collection


def _decide(session: Session, collection: Collection, user: User, action: str) -> Example:
    queue = queues.open_queue(session, collection=collection.name, user=user)
    example = queues.next_example(session, queue, user)
    assert example is not None
    reason = "off topic" if action == "reject" else ""
    service.decide(session, user, example.id, ReviewAction(action), version=example.version,
                   reason=reason, queue=queue)  # fmt: skip
    return example


def _scope(collection: Collection) -> second_pass.Scope:
    return second_pass.Scope(collection=collection)


def test_annotator_decisions_wait_for_a_check_and_leads_decisions_do_not(
    session: Session,
) -> None:
    collection = _collection(session, 3)
    ann, lead = make_user(session), make_user(session, "lead")
    first = _decide(session, collection, ann, "accept")
    second = _decide(session, collection, ann, "reject")
    _decide(session, collection, lead, "accept")
    waiting = second_pass.pending(session, _scope(collection))
    assert [(p.decision.example_id, p.decision.action, p.annotator) for p in waiting] == [
        (first.id, "accept", ann.name),
        (second.id, "reject", ann.name),
    ]
    assert second_pass.count_pending(session, _scope(collection)) == (2, False)
    # Another collection's scope holds none of them.
    assert second_pass.pending(session, _scope(_collection(session, 1))) == []


def test_approve_takes_a_decision_off_the_list_and_only_once(session: Session) -> None:
    collection = _collection(session, 1)
    ann, lead, other = make_user(session), make_user(session, "lead"), make_user(session, "lead")
    example = _decide(session, collection, ann, "accept")
    [waiting] = second_pass.pending(session, _scope(collection))
    decision = second_pass.approve(session, lead, waiting.decision.id, "fine")
    assert (decision.check, decision.check_note, decision.checked_by) == (
        "approved",
        "fine",
        lead.id,
    )
    assert second_pass.pending(session, _scope(collection)) == []
    session.refresh(example)
    assert example.status == "accepted"
    with pytest.raises(Conflict, match=f"already approved by {lead.name}"):
        second_pass.send_back(session, other, decision.id, "no")
    assert second_pass.check_counts(session, ann) == {"approved": 1}


def test_only_a_lead_checks(session: Session) -> None:
    collection = _collection(session, 1)
    ann, bob = make_user(session), make_user(session)
    _decide(session, collection, ann, "accept")
    [waiting] = second_pass.pending(session, _scope(collection))
    with pytest.raises(Forbidden):
        second_pass.approve(session, bob, waiting.decision.id)


def test_send_back_needs_a_note_restores_the_status_and_hands_it_back_first(
    session: Session,
) -> None:
    collection = _collection(session, 3)
    ann, bob, lead = make_user(session), make_user(session), make_user(session, "lead")
    rejected = _decide(session, collection, ann, "reject")
    [waiting] = second_pass.pending(session, _scope(collection))
    with pytest.raises(InvalidInput, match="say what"):
        second_pass.send_back(session, lead, waiting.decision.id, "  ")
    second_pass.send_back(session, lead, waiting.decision.id, "the answer is right: accept it")
    session.refresh(rejected)
    assert rejected.status == "candidate"
    [note] = second_pass.sent_back_to(session, ann)
    assert (note.example_id, note.note, note.lead, note.action) == (
        rejected.id,
        "the answer is right: accept it",
        lead.name,
        "reject",
    )
    assert second_pass.sent_back_note(session, ann, rejected.id) == note
    assert second_pass.sent_back_note(session, bob, rejected.id) is None
    # The sent-back example comes before the ones never seen, and only to its annotator.
    queue = queues.open_queue(session, collection=collection.name, user=ann)
    again = queues.next_example(session, queue, ann)
    assert again is not None and again.id == rejected.id
    service.decide(session, ann, again.id, ReviewAction.ACCEPT, version=again.version, queue=queue)
    assert second_pass.sent_back_to(session, ann) == []  # done again: off the list
    [redo] = second_pass.pending(session, _scope(collection))  # and waiting for a check again
    assert (redo.decision.example_id, redo.decision.action) == (rejected.id, "accept")


def test_a_vote_sent_back_is_withdrawn_and_the_status_resettled(session: Session) -> None:
    collection = _collection(session, 1, overlap=2)
    ann, bob, lead = make_user(session), make_user(session), make_user(session, "lead")
    example = _decide(session, collection, ann, "accept")
    _decide(session, collection, bob, "accept")
    session.refresh(example)
    assert example.status == "accepted"
    bobs = next(
        p for p in second_pass.pending(session, _scope(collection)) if p.annotator == bob.name
    )
    second_pass.send_back(session, lead, bobs.decision.id, "read the guidelines first")
    session.refresh(example)
    assert example.status == "candidate"  # one live vote of the two it needs
    queue = queues.open_queue(session, collection=collection.name, user=bob)
    again = queues.next_example(session, queue, bob)
    assert again is not None and again.id == example.id
    # The annotator whose vote stands is not given it again.
    assert queues.next_example(session, queue, ann) is None


def test_a_later_decision_by_someone_else_blocks_sending_back_the_earlier(
    session: Session,
) -> None:
    collection = _collection(session, 1)
    ann, lead = make_user(session), make_user(session, "lead")
    example = _decide(session, collection, ann, "accept")
    queue = queues.open_queue(session, collection=collection.name, status="any", user=lead)
    session.refresh(example)
    service.decide(session, lead, example.id, ReviewAction.REJECT, version=example.version,
                   reason="unsafe", queue=queue)  # fmt: skip
    [waiting] = second_pass.pending(session, _scope(collection))
    with pytest.raises(Conflict, match="decided again since"):
        second_pass.send_back(session, lead, waiting.decision.id, "why?")
    session.refresh(example)
    assert example.status == "rejected"


def test_an_edit_is_checked_with_its_change_and_can_be_fixed(session: Session) -> None:
    collection = _collection(session, 1)
    ann, lead = make_user(session), make_user(session, "lead")
    queue = queues.open_queue(session, collection=collection.name, user=ann)
    example = queues.next_example(session, queue, ann)
    assert example is not None
    service.save_turns(session, ann, example.id, {1: "A shorter answer."},
                       version=example.version, queue=queue)  # fmt: skip
    [waiting] = second_pass.pending(session, _scope(collection))
    assert waiting.decision.action == "edit" and waiting.decision.revision_id is not None
    # The annotator still holds it; the lead takes it over to fix it.
    service.take_over(session, lead, example.id)
    session.refresh(example)
    service.save_turns(session, lead, example.id, {1: "A shorter, correct answer."},
                       version=example.version)  # fmt: skip
    second_pass.mark_fixed(session, lead, waiting.decision.id, "fixed the facts")
    assert second_pass.check_counts(session, ann) == {"fixed": 1}
    assert second_pass.pending(session, _scope(collection)) == []
