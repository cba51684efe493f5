"""Several annotators per example: each one's accept or reject is a vote in the collection's
queue; once `overlap` different people have voted, the collection's rule settles the example's
status, or leaves it disputed for a lead to settle."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import ColumnElement, distinct, func, select
from sqlalchemy.orm import Session

from app.models import (
    Collection,
    CollectionItem,
    Example,
    ExampleStatus,
    ReviewAction,
    ReviewDecision,
    User,
)

VOTES = (ReviewAction.ACCEPT.value, ReviewAction.REJECT.value)
STATUS_OF_VOTE = {
    ReviewAction.ACCEPT.value: ExampleStatus.ACCEPTED.value,
    ReviewAction.REJECT.value: ExampleStatus.REJECTED.value,
}


def live_votes(collection_id: int) -> ColumnElement[bool]:
    """The condition on ReviewDecision rows that are live votes in this collection's queue."""
    return (
        (ReviewDecision.collection_id == collection_id)
        & ReviewDecision.action.in_(VOTES)
        & ReviewDecision.undone_at.is_(None)
    )


def voters(collection_id: int) -> Any:
    """How many different people voted on the example of the enclosing query (a correlated
    scalar subquery on Example.id)."""
    return (
        select(func.count(distinct(ReviewDecision.user_id)))
        .where(ReviewDecision.example_id == Example.id, live_votes(collection_id))
        .scalar_subquery()
    )


def voted_by(collection_id: int, user: User) -> Any:
    """True where this user already voted on the example of the enclosing query."""
    return (
        select(ReviewDecision.id)
        .where(
            ReviewDecision.example_id == Example.id,
            ReviewDecision.user_id == user.id,
            live_votes(collection_id),
        )
        .exists()
    )


def rule_outcome(statuses: list[str], rule: str) -> str | None:
    """The status the votes settle on under `rule` ("unanimous" or "majority": more than
    half), or None when they do not."""
    top, count = Counter(statuses).most_common(1)[0]
    if rule == "unanimous":
        return top if count == len(statuses) else None
    return top if count * 2 > len(statuses) else None


def latest_votes(session: Session, collection: Collection, example_id: int) -> dict[int, str]:
    """Each voter's latest live vote on the example, as the status it asks for."""
    rows = session.execute(
        select(ReviewDecision.user_id, ReviewDecision.action)
        .where(ReviewDecision.example_id == example_id, live_votes(collection.id))
        .order_by(ReviewDecision.id)
    )
    return {user_id: STATUS_OF_VOTE[action] for user_id, action in rows if user_id is not None}


def settled_status(session: Session, collection: Collection, example: Example) -> str:
    """The example's status after the votes so far: unchanged until `overlap` people voted,
    then the rule's outcome, or unreviewed (disputed) when the rule is not met."""
    votes = latest_votes(session, collection, example.id)
    if len(votes) < collection.overlap:
        return example.status
    outcome = rule_outcome(list(votes.values()), collection.consensus)
    return outcome or ExampleStatus.CANDIDATE.value


def count_disputed(session: Session, collection: Collection) -> int:
    """Examples of the collection that enough people voted on without settling them."""
    return (
        session.scalar(
            select(func.count())
            .select_from(Example)
            .join(CollectionItem, CollectionItem.example_id == Example.id)
            .where(
                CollectionItem.collection_id == collection.id,
                Example.status == ExampleStatus.CANDIDATE.value,
                voters(collection.id) >= collection.overlap,
            )
        )
        or 0
    )
