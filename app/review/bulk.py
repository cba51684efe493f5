"""One decision on many examples at once: every example of a dataset (or of a collection) that
matches a filter (or the ids given), accepted, rejected with a reason, added to a collection or
removed from it, given a source or a category, assigned to annotators, or scored.
A few thousand run in the request; more run as a job. Set-based: one UPDATE and one INSERT of
decisions per action, never a row at a time."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Select, exists, func, insert, literal, select, update
from sqlalchemy.orm import Session

from app.collections.service import add_items, get_collection, remove_items
from app.datasets.service import ExampleFilter, filtered_examples
from app.models import (
    CollectionItem,
    Dataset,
    Example,
    ExampleStatus,
    Job,
    ReviewAction,
    ReviewDecision,
    ReviewLease,
    User,
)
from app.models.base import utcnow
from app.platform.errors import InvalidInput
from app.platform.jobs.dispatch import create_job
from app.review.assignments import assign, assignees
from app.scoring.service import score_condition, start_score_job

BULK_KIND = "bulk"
BULK_ACTIONS = (
    "accept", "reject", "add", "remove", "set-source", "set-category", "assign", "score",
)  # fmt: skip
# The column each labelling action sets (to `value`; blank clears it).
LABELS = {"set-source": Example.source, "set-category": Example.category}
STATUS_OF = {"accept": ExampleStatus.ACCEPTED.value, "reject": ExampleStatus.REJECTED.value}
# Up to this many matching examples the action runs in the request; more run as a job.
INLINE_LIMIT = 2_000
MAX_IDS = 100_000


@dataclass(frozen=True)
class BulkAction:
    """What to do, and to which examples of the dataset (as stored in a job's parameters)."""

    action: str
    reason: str = ""
    collection: str | None = None
    value: str = ""
    source: str | None = None
    status: str | None = None
    q: str | None = None
    score: list[str] = field(default_factory=list)
    ids: list[int] | None = None
    # Narrowed to the members of a collection (a collection's queue), or to the examples not in
    # it (the collection's pick list).
    in_collection: str | None = None
    not_in_collection: str | None = None
    endpoint: str | None = None  # for "score": the LLM endpoint, when not the default

    def __post_init__(self) -> None:
        if self.action not in BULK_ACTIONS:
            raise InvalidInput(
                f"action: one of {', '.join(BULK_ACTIONS)}, not {self.action!r}", field="action"
            )
        if self.action == "reject" and not self.reason.strip():
            raise InvalidInput("reason: say why these examples are rejected", field="reason")
        if self.action in ("add", "remove") and not self.collection:
            raise InvalidInput(
                f"collection: name the collection to {self.action}", field="collection"
            )
        if self.action == "score" and not self.value.strip():
            raise InvalidInput("value: name the scorer to run on these examples", field="value")
        if len(self.value) > 200:
            raise InvalidInput("value: at most 200 characters", field="value")
        if self.ids is not None and len(self.ids) > MAX_IDS:
            raise InvalidInput(f"ids: at most {MAX_IDS:,}; use a filter for more", field="ids")

    def params(self) -> dict[str, Any]:
        """The action as job parameters."""
        return asdict(self)


def matching(session: Session, dataset: Dataset | None, bulk: BulkAction) -> Select[Any]:
    """The ids of the dataset's (or the collection's) examples the action applies to."""
    if dataset is None and bulk.ids is None and not bulk.in_collection:
        raise InvalidInput("name the examples: a dataset, a collection or ids", field="ids")
    filters = ExampleFilter(
        source=bulk.source,
        status=bulk.status,
        q=bulk.q,
        conditions=[score_condition(session, expression) for expression in bulk.score],
    )
    query = filtered_examples(dataset, filters).with_only_columns(Example.id)
    if bulk.ids is not None:
        query = query.where(Example.id.in_(bulk.ids))
    for name, inside in ((bulk.in_collection, True), (bulk.not_in_collection, False)):
        if name:
            members = select(CollectionItem.example_id).where(
                CollectionItem.collection_id == get_collection(session, name).id
            )
            query = query.where(Example.id.in_(members) if inside else Example.id.not_in(members))
    return query


def _count(session: Session, ids: Select[Any]) -> int:
    """How many rows a query of ids gives."""
    return session.scalar(select(func.count()).select_from(ids.subquery())) or 0


def count_matching(session: Session, dataset: Dataset | None, bulk: BulkAction) -> int:
    """How many examples the action would touch."""
    return _count(session, matching(session, dataset, bulk))


def start_bulk(
    session: Session, user: User, dataset: Dataset | None, bulk: BulkAction
) -> tuple[int, dict[str, int] | None, Job | None]:
    """(how many match, the counts when it ran here, or the job that runs it): a few thousand
    run in the request, more as a job; "score" starts scoring's own job on the selection."""
    if bulk.action == "score":
        return _start_scoring(session, user, dataset, bulk)
    if bulk.action == "assign":
        assignees(session, bulk.value)  # a misspelt name is refused now, not in the job
    count = count_matching(session, dataset, bulk)
    if count <= INLINE_LIMIT:
        return count, apply(session, user, dataset, bulk), None
    job = create_job(
        session,
        BULK_KIND,
        bulk.params(),
        queue="cpu",
        user=user,
        dataset_id=dataset.id if dataset else None,
    )
    return count, None, job


def _start_scoring(
    session: Session, user: User, dataset: Dataset | None, bulk: BulkAction
) -> tuple[int, dict[str, int], Job | None]:
    """A score job per dataset of the selection, restricted to the selected examples."""
    rows = session.execute(
        matching(session, dataset, bulk)
        .add_columns(Example.dataset_id)
        .order_by(Example.id)
        .limit(MAX_IDS + 1)
    ).all()
    if len(rows) > MAX_IDS:
        raise InvalidInput(
            f"score: at most {MAX_IDS:,} examples at once; score the whole dataset instead",
            field="ids",
        )
    by_dataset: dict[int, list[int]] = {}
    for example_id, dataset_id in rows:
        by_dataset.setdefault(dataset_id, []).append(example_id)
    jobs = [
        start_score_job(
            session,
            session.get_one(Dataset, dataset_id),
            bulk.value.strip(),
            endpoint=bulk.endpoint or None,
            user=user,
            example_ids=ids,
        )
        for dataset_id, ids in sorted(by_dataset.items())
    ]
    return len(rows), {"matched": len(rows), "jobs": len(jobs)}, jobs[0] if jobs else None


def apply(
    session: Session, user: User, dataset: Dataset | None, bulk: BulkAction
) -> dict[str, int]:
    """Do it, in the session's transaction; counts of what changed and what was left alone.
    Running it again changes nothing more."""
    ids = matching(session, dataset, bulk)
    if bulk.action in STATUS_OF:
        return _decide(session, user, ids, bulk)
    if bulk.action in LABELS:
        return _label(session, ids, LABELS[bulk.action], bulk.value.strip() or None)
    if bulk.action == "assign":
        return assign(session, user, ids, assignees(session, bulk.value))
    collection = get_collection(session, bulk.collection or "")
    chosen = list(session.scalars(ids))
    if bulk.action == "add":
        added = add_items(session, collection, chosen, user=user, reason=bulk.reason or "bulk")
        return {"matched": len(chosen), "changed": added}
    return {"matched": len(chosen), "changed": remove_items(session, collection, chosen)}


def _label(session: Session, ids: Select[Any], column: Any, value: str | None) -> dict[str, int]:
    """Set the source or category of every matching example not already so."""
    matched = _count(session, ids)
    changed = session.execute(
        update(Example)
        .where(Example.id.in_(ids), column.is_distinct_from(value))
        .values({column: value, Example.version: Example.version + 1})
        .execution_options(synchronize_session=False)
    )
    return {"matched": matched, "changed": getattr(changed, "rowcount", 0)}


def _decide(session: Session, user: User, ids: Select[Any], bulk: BulkAction) -> dict[str, int]:
    """Set the status of every matching example not already so and not held by someone else;
    one decision per example changed, which undo and the agreement figures read.

    One statement: the filter is read once (the matching rows, whether someone else holds
    each), then the UPDATE of those to change and the INSERT of their decisions run from it in
    the database. (Three passes over a score filter and 100,000 decisions sent from Python took
    twice as long as this on a million.)"""
    new = STATUS_OF[bulk.action]
    held = exists().where(
        ReviewLease.example_id == Example.id,
        ReviewLease.user_id != user.id,
        ReviewLease.expires_at > utcnow(),
    )
    matched = ids.add_columns(Example.status.label("status"), held.label("held")).cte("matched")
    wanted = select(matched.c.id).where(matched.c.status != new, ~matched.c.held)
    target = (
        select(Example.id.label("id"), Example.status.label("before"))
        .where(Example.id.in_(wanted))
        .with_for_update(of=Example)
        .cte("target")
    )
    changed = (
        update(Example)
        .where(Example.id == target.c.id, Example.status != new)
        .values(status=new, version=Example.version + 1)
        .returning(Example.id.label("id"), target.c.before)
        .cte("changed")
    )
    decided = (
        insert(ReviewDecision)
        .from_select(
            ["example_id", "user_id", "action", "reason", "status_before"],
            select(
                changed.c.id,
                literal(user.id),
                literal(ReviewAction(bulk.action).value),
                literal(bulk.reason.strip()),
                changed.c.before,
            ),
            include_defaults=False,  # created_at from the server's now(), as the default gives
        )
        .returning(ReviewDecision.example_id)
        .cte("decided")
    )
    counted = select(
        select(func.count()).select_from(matched).scalar_subquery(),
        select(func.count()).select_from(decided).scalar_subquery(),
        select(func.count())
        .select_from(matched)
        .where(matched.c.held, matched.c.status != new)
        .scalar_subquery(),
    )
    matched_n, changed_n, held_n = session.execute(counted).one()
    return {"matched": matched_n, "changed": changed_n, "held": held_n}
