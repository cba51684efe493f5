"""Review queues: which examples wait for a person, and handing each to one person at a time."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, Select, and_, any_, bindparam, delete, exists, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session, aliased

from app.collections.service import get_collection
from app.datasets.service import get_dataset, search_condition
from app.models import (
    Collection,
    CollectionItem,
    Dataset,
    Example,
    ExampleStatus,
    ReviewAction,
    ReviewDecision,
    ReviewLease,
    Role,
    User,
)
from app.models.base import utcnow
from app.platform.config import get_settings
from app.platform.db import conflict_insert
from app.platform.errors import Forbidden, InvalidInput
from app.platform.vectors.search import similar_to as nearest_to
from app.review import assignments, consensus
from app.scoring.service import score_condition

# Counting a huge queue exactly is slow and tells a person nothing more than "lots".
COUNT_CAP = 10_000
# With words to find, counting means reading each example's text: "100+" says enough. On a
# million examples (a busy machine) counting to 100 instead of 1,000 took the p95 of 100 typed
# searches' counts from 82-100 ms to 50-58 (each match counted is a heap read).
SEARCHED_COUNT_CAP = 100
# A queue by meaning holds the examples nearest to the sentence typed, this many, best first.
SIMILAR_LIMIT = 200
# The lead's queue of examples that enough annotators voted on without agreeing.
DISPUTED = "disputed"


@dataclass(frozen=True)
class Queue:
    """A collection's or a dataset's examples, narrowed by filters; `status` defaults to the
    examples nobody has decided on yet."""

    collection: Collection | None = None
    dataset: Dataset | None = None
    source: str = ""
    status: str = ExampleStatus.CANDIDATE.value
    q: str = ""
    score: str = ""
    similar_to: str = ""
    conditions: tuple[Any, ...] = field(default=(), compare=False)
    # With `similar_to`: the members' ids, nearest first (empty when nothing can be searched,
    # and then `notice` says why).
    ranked: tuple[int, ...] | None = field(default=None, compare=False)
    notice: str = field(default="", compare=False)

    @property
    def name(self) -> str:
        """What the queue is called on the page."""
        assert self.collection or self.dataset
        return self.collection.name if self.collection else self.dataset.name  # type: ignore[union-attr]

    @property
    def params(self) -> dict[str, str]:
        """The query parameters that name this queue again (for links and hidden fields)."""
        where = (
            {"collection": self.collection.name}
            if self.collection
            else {"dataset": self.dataset.name}  # type: ignore[union-attr]
        )
        narrowed = {
            "source": self.source,
            "q": self.q,
            "score": self.score,
            "similar_to": self.similar_to,
        }
        if self.status != ExampleStatus.CANDIDATE.value:
            narrowed["status"] = self.status
        return where | {k: v for k, v in narrowed.items() if v}


def open_queue(
    session: Session,
    *,
    collection: str = "",
    dataset: str = "",
    source: str = "",
    status: str = ExampleStatus.CANDIDATE.value,
    q: str = "",
    score: str = "",
    similar_to: str = "",
    user: User | None = None,
) -> Queue:
    """The queue named by a collection or a dataset, with its filters checked; with
    `similar_to`, ranked by meaning."""
    if bool(collection) == bool(dataset):
        raise InvalidInput("name a collection or a dataset to review", field="collection")
    statuses = {s.value for s in ExampleStatus} | {"any", DISPUTED}
    if status not in statuses:
        raise InvalidInput(f"unknown status {status!r}", field="status")
    conditions = tuple(score_condition(session, part) for part in score.split(",") if part.strip())
    queue = Queue(
        collection=get_collection(session, collection) if collection else None,
        dataset=get_dataset(session, dataset) if dataset else None,
        source=source.strip(),
        status=status,
        q=q.strip(),
        score=score.strip(),
        similar_to=similar_to.strip(),
        conditions=conditions,
    )
    if status == DISPUTED and user is not None and not user.has_role(Role.LEAD):
        raise Forbidden("the disputed examples are a lead's to settle", field="status")
    if status == DISPUTED and (queue.collection is None or queue.collection.overlap <= 1):
        raise InvalidInput(
            "status: only a collection reviewed by several annotators has disputed examples",
            field="status",
        )
    return _ranked(session, queue) if queue.similar_to else queue


def _ranked(session: Session, queue: Queue) -> Queue:
    """The queue with its members ranked by meaning, from the HNSW index; an empty queue with
    a notice when the examples have no embeddings to search."""
    try:
        found = nearest_to(session, _members(queue), queue.similar_to, None, SIMILAR_LIMIT)
    except InvalidInput as exc:
        return replace(queue, ranked=(), notice=exc.message)
    notice = "" if found else "No embedded example of this queue to rank by meaning."
    return replace(queue, ranked=tuple(i for i, _ in found), notice=notice)


def _members(queue: Queue) -> Select[Any]:
    """Ids of the queue's examples, every filter applied, in id order."""
    query = select(Example.id)
    if queue.collection is not None:
        query = query.join(CollectionItem, CollectionItem.example_id == Example.id).where(
            CollectionItem.collection_id == queue.collection.id
        )
    else:
        assert queue.dataset is not None
        query = query.where(Example.dataset_id == queue.dataset.id)
    if queue.status == DISPUTED:  # voted on by enough people, who did not agree
        assert queue.collection is not None
        overlap = queue.collection.overlap
        query = query.where(
            Example.status == ExampleStatus.CANDIDATE.value,
            consensus.voters(queue.collection.id) >= overlap,
        )
    elif queue.status != "any":
        query = query.where(Example.status == queue.status)
    if queue.source:
        query = query.where(Example.source == queue.source)
    if queue.q:
        query = query.where(search_condition(queue.q))
    query = query.where(*queue.conditions)
    if queue.ranked is not None:
        ranked = bindparam(None, list(queue.ranked), type_=ARRAY(BigInteger()))
        return query.where(Example.id == any_(ranked)).order_by(
            func.array_position(ranked, Example.id)
        )
    return query.order_by(Example.id)


def _open_for(user: User, now: datetime, queue: Queue) -> Any:
    """Examples nobody else holds, and that this user has not skipped; in a collection
    reviewed by several annotators, also not yet voted on by this user nor by enough people."""
    held = exists().where(
        ReviewLease.example_id == Example.id,
        ReviewLease.user_id != user.id,
        ReviewLease.expires_at > now,
    )
    skipped = exists().where(
        ReviewDecision.example_id == Example.id,
        ReviewDecision.user_id == user.id,
        ReviewDecision.action == ReviewAction.SKIP.value,
        ReviewDecision.undone_at.is_(None),
    )
    collection = queue.collection
    if queue.status == DISPUTED:  # the lead's to settle, whoever the example was assigned to
        return and_(~held, ~skipped)
    mine = assignments.open_to(user)
    if collection is None or collection.overlap <= 1:
        return and_(~held, ~skipped, mine)
    votes_wanted = consensus.voters(collection.id) < collection.overlap
    return and_(~held, ~skipped, mine, ~consensus.voted_by(collection.id, user), votes_wanted)


def redone_since(decision: type[ReviewDecision], user: User) -> Any:
    """True where this user decided the decision's example again after it (a skip counts: it
    hands the example to someone else): what a lead sent back has been dealt with."""
    later = aliased(ReviewDecision)
    return exists().where(
        later.example_id == decision.example_id,
        later.user_id == user.id,
        later.id > decision.id,
        later.undone_at.is_(None),
    )


def sent_back_to(user: User) -> Select[Any]:
    """The ids of the examples a lead sent back to this user that they have not done again."""
    sent = aliased(ReviewDecision)
    return select(sent.example_id).where(
        sent.user_id == user.id, sent.check == "sent_back", ~redone_since(sent, user)
    )


def upcoming(session: Session, queue: Queue, user: User, limit: int = 20) -> list[Example]:
    """The next examples this user would be given, in order (those assigned to them first)."""
    waiting = _waiting(queue, user)
    if not assignments.has_any(session, user):  # most people: one search of the queue, not two
        ids = list(session.scalars(waiting.limit(limit)))
    else:
        ids = list(session.scalars(waiting.where(assignments.assigned_to(user)).limit(limit)))
        rest = waiting.where(~assignments.assigned_to(user)).limit(limit - len(ids))
        ids += session.scalars(rest) if len(ids) < limit else []
    return _in_order(session, ids)


def count_and_upcoming(
    session: Session, queue: Queue, user: User, limit: int
) -> tuple[int, bool, list[Example]]:
    """`count_waiting` and `upcoming` together: with a text filter, from one search when
    nothing is assigned to the user (counting the matches of a common word and listing the
    first of them each read all of its index entries: 40 ms apiece on a million)."""
    if not queue.q or queue.ranked is not None or assignments.has_any(session, user):
        count, capped = count_waiting(session, queue, user)
        return count, capped, upcoming(session, queue, user, limit)
    ids = list(session.scalars(_waiting(queue, user).limit(max(SEARCHED_COUNT_CAP, limit) + 1)))
    count = len(ids)
    return (
        min(count, SEARCHED_COUNT_CAP),
        count > SEARCHED_COUNT_CAP,
        _in_order(session, ids[:limit]),
    )


def _waiting(queue: Queue, user: User) -> Select[Any]:
    """Ids of the queue's examples open to this user, in id order."""
    return _members(queue).where(_open_for(user, utcnow(), queue))


def _in_order(session: Session, ids: list[int]) -> list[Example]:
    found = {e.id: e for e in session.scalars(select(Example).where(Example.id.in_(ids)))}
    return [found[i] for i in ids]


def waiting_examples(queue: Queue, user: User) -> Select[Any]:
    """Every example of the queue open to this user, in no order (for a table sorted by score)."""
    open_ids = _waiting(queue, user).order_by(None)
    return select(Example).where(Example.id.in_(open_ids))


def count_waiting(session: Session, queue: Queue, user: User) -> tuple[int, bool]:
    """How many examples wait for this user, counted up to COUNT_CAP (SEARCHED_COUNT_CAP with
    a text filter); and whether capped."""
    cap = SEARCHED_COUNT_CAP if queue.q else COUNT_CAP
    # In no order: the index of a text filter hands matches over unsorted, and sorting them
    # first meant reading all of them (5 s for three common words on a million).
    ids = _waiting(queue, user).order_by(None).limit(cap + 1).subquery()
    count = session.scalar(select(func.count()).select_from(ids)) or 0
    return min(count, cap), count > cap


def aware(moment: datetime) -> datetime:
    """A stored time as UTC-aware (SQLite gives them back naive)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def lease_expiry(now: datetime) -> datetime:
    """When a lease taken now runs out."""
    return now + timedelta(seconds=get_settings().review_lease_s)


def take_lease(session: Session, user: User, example_id: int) -> bool:
    """Hold an example for this user; False when someone else holds an unexpired lease."""
    now = utcnow()
    statement = conflict_insert(ReviewLease).values(
        example_id=example_id, user_id=user.id, expires_at=lease_expiry(now)
    )
    excluded = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=["example_id"],
        set_={"user_id": excluded.user_id, "expires_at": excluded.expires_at},
        # Someone else's live lease is left alone; one's own is renewed.
        where=(ReviewLease.user_id == user.id) | (ReviewLease.expires_at <= now),
    ).returning(ReviewLease.example_id)
    return session.execute(statement).first() is not None


def holder(session: Session, example_id: int) -> ReviewLease | None:
    """The unexpired lease on an example, if any."""
    lease = session.get(ReviewLease, example_id)
    if lease is None or aware(lease.expires_at) <= utcnow():
        return None
    return lease


def release(session: Session, user: User, example_id: int) -> None:
    """Give an example back to the queue."""
    session.execute(
        delete(ReviewLease).where(
            ReviewLease.example_id == example_id, ReviewLease.user_id == user.id
        )
    )


def next_example(session: Session, queue: Queue, user: User) -> Example | None:
    """The example this user should review next, leased to them; None when the queue is done.

    An example the user already holds in this queue comes first, so a reload or a second tab
    does not take another one."""
    now = utcnow()
    own = (
        _members(queue)
        .join(ReviewLease, ReviewLease.example_id == Example.id)
        .where(ReviewLease.user_id == user.id, ReviewLease.expires_at > now)
        .limit(1)
    )
    held = session.scalar(own)
    if held is not None and take_lease(session, user, held):
        return session.get(Example, held)
    # Then what a lead sent back to this user, before anything new: their few sent-back
    # examples first (the partial index on sent-back decisions), then which are in this queue.
    sent_back = list(session.scalars(sent_back_to(user).limit(100)))
    if sent_back:
        for example_id in session.scalars(
            _members(queue).where(Example.id.in_(sent_back)).order_by(None).limit(8)
        ):
            if take_lease(session, user, example_id):
                return session.get(Example, example_id)
    # What a lead assigned to this user comes before the rest of the queue.
    return _lease_first(session, queue, user, now, assignments.assigned_to(user)) or (
        _lease_first(session, queue, user, now, None)
    )


def _lease_first(
    session: Session, queue: Queue, user: User, now: datetime, narrowed: Any
) -> Example | None:
    """Lease the first open example of the queue (narrowed further when given) to this user."""
    after, tried = 0, list[int]()
    while True:
        candidates = _members(queue).where(_open_for(user, now, queue))
        if narrowed is not None:
            candidates = candidates.where(narrowed)
        # Read on past the ones tried: by id, or (a queue by meaning) by leaving them out.
        if queue.ranked is None:
            candidates = candidates.where(Example.id > after)
        elif tried:
            candidates = candidates.where(Example.id.not_in(tried))
        candidates = candidates.limit(8)
        # Concurrent annotators skip rows another transaction is handing out right now. NO KEY
        # UPDATE: a job inserting rows that reference an example (its key-share lock) neither
        # blocks nor hides it.
        candidates = candidates.with_for_update(of=Example, skip_locked=True, key_share=True)
        found = list(session.scalars(candidates))
        if not found:
            return None
        for example_id in found:
            if take_lease(session, user, example_id):
                return session.get(Example, example_id)
        # All were leased by others since this statement's snapshot: read on past them.
        after = found[-1]
        tried += found
