"""Review decisions: accept, reject, edit, write, skip, and undo of the last one."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session

from app.collections.service import add_items
from app.datasets.service import content_hash, update_example
from app.models import (
    Collection,
    CollectionItem,
    Dataset,
    Example,
    ExampleStatus,
    Origin,
    ReviewAction,
    ReviewDecision,
    ReviewLease,
    Revision,
    Role,
    User,
)
from app.models.base import utcnow
from app.platform.errors import Conflict, Forbidden, InvalidInput, NotFound
from app.review import consensus, questions
from app.review.agreement import Agreement as Agreement
from app.review.agreement import collection_agreement as collection_agreement
from app.review.consensus import count_disputed as count_disputed
from app.review.questions import QuestionSpec as QuestionSpec
from app.review.questions import add_question as add_question
from app.review.questions import answer_counts as answer_counts
from app.review.questions import list_questions as list_questions
from app.review.questions import remove_question as remove_question
from app.review.questions_panel import questions_panel as questions_panel
from app.review.queue import Queue, holder, release, take_lease

# What a decision makes of the example's status; edits and skips leave it as it was.
STATUS_AFTER = {
    ReviewAction.ACCEPT: ExampleStatus.ACCEPTED.value,
    ReviewAction.REJECT: ExampleStatus.REJECTED.value,
}
MAX_TEXT = 100_000


class StaleVersion(Conflict):
    """The example changed since the person loaded it; carries both versions."""


class HeldBySomeone(Conflict):
    """Another person holds the example's lease; says who and until when."""


def _locked(session: Session, example_id: int, user: User, version: int) -> Example:
    """The example, row-locked, checked to be this user's to decide on and unchanged."""
    example = session.get(Example, example_id, with_for_update={"key_share": True})
    if example is None:
        raise NotFound(f"no example {example_id}")
    refuse_if_held(session, example_id, user)
    if example.version != version:
        raise StaleVersion(
            f"example {example_id} was changed by someone else (now version {example.version})",
            current_version=example.version,
        )
    return example


def refuse_if_held(session: Session, example_id: int, user: User) -> None:
    """Conflict naming the holder and the lease's end when someone else holds the example."""
    lease = holder(session, example_id)
    if lease is None or lease.user_id == user.id:
        return
    name = session.scalar(select(User.name).where(User.id == lease.user_id))
    raise HeldBySomeone(
        f"example {example_id} is being reviewed by {name} until {lease.expires_at:%H:%M} UTC",
        held_by=name,
        held_until=lease.expires_at.isoformat(),
    )


def take_over(session: Session, lead: User, example_id: int) -> str | None:
    """A lead takes an example from whoever holds it (who is told so by their next save or
    decision); returns the name of the person it was taken from, if anyone held it."""
    if not lead.has_role(Role.LEAD):
        raise Forbidden("only a lead takes an example over from another person")
    lease = holder(session, example_id)
    previous = None
    if lease is not None and lease.user_id != lead.id:
        previous = session.scalar(select(User.name).where(User.id == lease.user_id))
        session.delete(lease)
        session.flush()
    take_lease(session, lead, example_id)
    return previous


def check_edit(session: Session, user: User, example_id: int, fields: Iterable[str]) -> None:
    """The review pages' rules for an edit made another way (the API): an annotator changes
    an example's status only by a review decision, and nobody edits what another person holds."""
    if "status" in fields and not user.has_role(Role.LEAD):
        raise Forbidden(
            "an annotator sets an example's status by a review decision (accept or reject), "
            "not by an edit",
            field="status",
        )
    refuse_if_held(session, example_id, user)


def check_read(session: Session, user: User, example_id: int) -> None:
    """An annotator reads the examples their queue handed them or they worked on, not every
    example of every dataset (NotFound otherwise, as for an example that does not exist)."""
    if user.has_role(Role.LEAD):
        return
    theirs = or_(
        exists().where(ReviewLease.example_id == example_id, ReviewLease.user_id == user.id),
        exists().where(ReviewDecision.example_id == example_id, ReviewDecision.user_id == user.id),
        exists().where(Revision.example_id == example_id, Revision.user_id == user.id),
    )
    if not session.scalar(select(theirs)):
        raise NotFound(f"no example {example_id}")


def _record(
    session: Session,
    user: User,
    example: Example,
    action: ReviewAction,
    queue: Queue | None,
    *,
    status_before: str,
    reason: str = "",
    revision_id: int | None = None,
) -> ReviewDecision:
    decision = ReviewDecision(
        example_id=example.id,
        user_id=user.id,
        collection_id=queue.collection.id if queue and queue.collection else None,
        action=action.value,
        reason=reason,
        status_before=status_before,
        revision_id=revision_id,
    )
    session.add(decision)
    session.flush()
    return decision


def decide(
    session: Session,
    user: User,
    example_id: int,
    action: ReviewAction,
    *,
    version: int,
    reason: str = "",
    queue: Queue | None = None,
    answers: Mapping[str, Any] | None = None,
) -> ReviewDecision:
    """Accept, reject (with a reason) or skip an example seen at `version`; frees its lease.
    `answers` (question key -> value) are recorded first; an annotator's accept or reject
    needs the collection's required questions answered.

    In a collection reviewed by several annotators, an accept or reject is a vote: the status
    follows the collection's consensus rule once enough people voted. A lead's decision on a
    disputed example settles it."""
    if action not in (ReviewAction.ACCEPT, ReviewAction.REJECT, ReviewAction.SKIP):
        raise InvalidInput(f"{action} is not a decision", field="action")
    reason = reason.strip()
    if action is ReviewAction.REJECT and not reason:
        raise InvalidInput("say why the example is rejected", field="reason")
    example = _locked(session, example_id, user, version)
    before = example.status
    collection = queue.collection if queue else None
    if answers and collection is None:
        raise InvalidInput("answers go with a collection's queue: name it", field="collection")
    if collection is not None:
        questions.save_answers(session, user, collection, example_id, answers or {})
        if action in STATUS_AFTER:
            questions.check_required(session, user, collection, example_id)
    voting = action in STATUS_AFTER and _is_vote(session, user, collection, example)
    if action in STATUS_AFTER and not voting:
        example.status = STATUS_AFTER[action]
    decision = _record(session, user, example, action, queue, status_before=before, reason=reason)
    if voting:
        assert collection is not None
        example.status = consensus.settled_status(session, collection, example)
    release(session, user, example_id)
    return decision


def _is_vote(session: Session, user: User, collection: Collection | None, example: Example) -> bool:
    """True when this decision is one vote among several: a collection with overlap, and not
    a lead settling an example its voters left disputed."""
    if collection is None and not user.has_role(Role.LEAD):
        voted_in = session.scalar(
            select(Collection.name)
            .join(CollectionItem, CollectionItem.collection_id == Collection.id)
            .where(CollectionItem.example_id == example.id, Collection.overlap > 1)
            .limit(1)
        )
        if voted_in is not None:
            raise Conflict(
                f"example {example.id} is decided by several annotators in collection "
                f"{voted_in!r}: decide it in that collection's queue"
            )
    if collection is None or collection.overlap <= 1:
        return False
    others = consensus.latest_votes(session, collection, example.id).keys() - {user.id}
    if len(others) < collection.overlap:
        return True
    if not user.has_role(Role.LEAD):
        raise Conflict(
            f"example {example.id} has the {collection.overlap} votes it needs: a lead settles it"
        )
    return False


def _turn_changes(example: Example, turns: dict[int, str]) -> list[dict[str, str]]:
    messages = [dict(m) for m in example.messages]
    for index, text in turns.items():
        if not 0 <= index < len(messages):
            raise InvalidInput(f"example {example.id} has no turn {index}", field=f"turn_{index}")
        if len(text) > MAX_TEXT:
            raise InvalidInput(f"turn {index} is longer than {MAX_TEXT:,} characters")
        if not text.strip():
            raise InvalidInput(f"turn {index} is empty", field=f"turn_{index}")
        messages[index]["content"] = text
    return messages


def save_turns(
    session: Session,
    user: User,
    example_id: int,
    turns: dict[int, str],
    *,
    version: int,
    action: ReviewAction = ReviewAction.EDIT,
    reason: str = "",
    queue: Queue | None = None,
) -> Example:
    """Replace some turns' text (an edit, or a new answer written from scratch) if the example
    is still at `version`; a stale save raises StaleVersion and writes nothing."""
    if action not in (ReviewAction.EDIT, ReviewAction.WRITE):
        raise InvalidInput(f"{action} is not an edit", field="action")
    example = _locked(session, example_id, user, version)
    messages = _turn_changes(example, turns)
    before = example.status
    update_example(session, example_id, version, {"messages": messages}, user, reason)
    revision = session.scalar(
        select(Revision)
        .where(Revision.example_id == example_id, Revision.version == example.version)
        .order_by(Revision.id.desc())
    )
    if revision is not None:  # None: the text did not change, so there is nothing to record
        _record(
            session, user, example, action, queue, status_before=before, revision_id=revision.id
        )
        take_lease(session, user, example_id)
    return example


@dataclass(frozen=True)
class NewExample:
    """A prompt and an answer written by a person (LIMA's authors wrote 200 of these)."""

    prompt: str
    answer: str
    source: str = "human"
    category: str = ""


def write_example(
    session: Session, user: User, dataset: Dataset, draft: NewExample, queue: Queue | None = None
) -> Example:
    """Add a hand-written example, accepted, to a dataset (and to the queue's collection)."""
    prompt, answer = draft.prompt.strip(), draft.answer.strip()
    for name, text in (("prompt", prompt), ("answer", answer)):
        if not text:
            raise InvalidInput(f"the {name} is empty", field=name)
        if len(text) > MAX_TEXT:
            raise InvalidInput(f"the {name} is longer than {MAX_TEXT:,} characters", field=name)
    messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
    digest = content_hash(messages)
    clash = session.scalar(
        select(Example.id).where(Example.dataset_id == dataset.id, Example.content_hash == digest)
    )
    if clash is not None:
        raise Conflict(f"example {clash} already has this prompt and answer", duplicate_of=clash)
    example = Example(
        dataset_id=dataset.id,
        messages=messages,
        instruction=prompt,
        output=answer,
        source=draft.source.strip() or "human",
        category=draft.category.strip() or None,
        meta={"written_by": user.name},
        content_hash=digest,
        origin=Origin.WRITTEN.value,
        status=ExampleStatus.ACCEPTED.value,
    )
    session.add(example)
    session.flush()
    if queue is not None and queue.collection is not None:
        add_items(session, queue.collection, [example.id], user=user, reason="written by hand")
    _record(
        session,
        user,
        example,
        ReviewAction.WRITE,
        queue,
        status_before=ExampleStatus.CANDIDATE.value,
    )
    return example


def last_decision(session: Session, user: User) -> ReviewDecision | None:
    """This user's latest decision that has not been undone."""
    return session.scalar(
        select(ReviewDecision)
        .where(ReviewDecision.user_id == user.id, ReviewDecision.undone_at.is_(None))
        .order_by(ReviewDecision.id.desc())
        .limit(1)
    )


def undo_last(session: Session, user: User) -> int | None:
    """Undo this user's last decision and hand its example back to them; returns the example's
    id (None when it was a hand-written example, which undo deletes). Conflict when someone
    changed the example since."""
    decision = last_decision(session, user)
    if decision is None:
        raise NotFound("there is nothing to undo")
    example = session.get(Example, decision.example_id, with_for_update={"key_share": True})
    assert example is not None  # decisions are deleted with their example
    later = session.scalar(
        select(ReviewDecision.id).where(
            ReviewDecision.example_id == example.id,
            ReviewDecision.id > decision.id,
            ReviewDecision.undone_at.is_(None),
        )
    )
    if later is not None:
        raise Conflict(f"example {example.id} was decided again since: undo is not possible")
    if decision.action == ReviewAction.WRITE.value and decision.revision_id is None:
        if example.version != 1:
            raise Conflict(f"example {example.id} was edited since it was written")
        session.delete(example)
        return None
    if decision.revision_id is not None:
        _restore(session, user, example, decision.revision_id)
    example.status = decision.status_before
    decision.undone_at = utcnow()
    if not take_lease(session, user, example.id):
        raise Conflict(f"example {example.id} is being reviewed by someone else now")
    return example.id


def _restore(session: Session, user: User, example: Example, revision_id: int) -> None:
    revision = session.get(Revision, revision_id)
    # Status decisions bump the version too: what matters is that the text is still the edit's.
    if revision is None or revision.after.get("messages") != example.messages:
        raise Conflict(f"example {example.id} was edited again since: undo is not possible")
    before: dict[str, Any] = revision.before
    update_example(
        session, example.id, example.version, {"messages": before["messages"]}, user, "undo"
    )


def original_messages(session: Session, example: Example) -> list[dict[str, str]]:
    """The example's turns as first imported (before any edit)."""
    first = session.scalar(
        select(Revision.before)
        .where(Revision.example_id == example.id)
        .order_by(Revision.id)
        .limit(1)
    )
    return list(first["messages"]) if first else list(example.messages)
