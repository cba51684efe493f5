"""A lead's second pass over annotators' work: approve a decision or an edit, fix it and
approve, or send it back with a note for the annotator to do again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, func, select, true
from sqlalchemy.orm import Session, aliased

from app.models import (
    Collection,
    Dataset,
    Example,
    ExampleStatus,
    ReviewAction,
    ReviewCheck,
    ReviewDecision,
    Role,
    User,
)
from app.models.base import utcnow
from app.platform.errors import Conflict, Forbidden, InvalidInput, NotFound, SiftError
from app.review import consensus
from app.review.queue import redone_since

# What a lead checks: what an annotator decided or wrote (skips change nothing).
CHECKED = (
    ReviewAction.ACCEPT.value,
    ReviewAction.REJECT.value,
    ReviewAction.EDIT.value,
    ReviewAction.WRITE.value,
)
MAX_NOTE = 2_000
COUNT_CAP = 10_000


@dataclass(frozen=True)
class Scope:
    """Whose decisions a lead checks: one collection's queue, one dataset's examples, or all."""

    collection: Collection | None = None
    dataset: Dataset | None = None

    @property
    def params(self) -> dict[str, str]:
        """The query parameters that name this scope again."""
        if self.collection is not None:
            return {"collection": self.collection.name}
        return {"dataset": self.dataset.name} if self.dataset is not None else {}


@dataclass(frozen=True)
class Pending:
    """One annotator decision waiting for a lead, with what the list shows of it."""

    decision: ReviewDecision
    annotator: str
    prompt: str
    collection: str | None


def _pending(scope: Scope) -> Select[ReviewDecision, str, str | None, str]:
    """Live, unchecked decisions of annotators (not of leads) in the scope, oldest first."""
    query = (
        select(ReviewDecision, User.name, Example.instruction, Collection.name)
        .join(User, User.id == ReviewDecision.user_id)
        .join(Example, Example.id == ReviewDecision.example_id)
        .outerjoin(Collection, Collection.id == ReviewDecision.collection_id)
        .where(
            ReviewDecision.checked_at.is_(None),
            ReviewDecision.undone_at.is_(None),
            ReviewDecision.action.in_(CHECKED),
            User.role == Role.ANNOTATOR.value,
        )
    )
    if scope.collection is not None:
        query = query.where(ReviewDecision.collection_id == scope.collection.id)
    if scope.dataset is not None:
        query = query.where(Example.dataset_id == scope.dataset.id)
    return query.order_by(ReviewDecision.id)


def pending(session: Session, scope: Scope, *, after: int = 0, limit: int = 50) -> list[Pending]:
    """The decisions waiting for a lead's check, oldest first, after decision `after`."""
    rows = session.execute(_pending(scope).where(ReviewDecision.id > after).limit(limit))
    return [Pending(d, name, prompt or "", coll) for d, name, prompt, coll in rows]


def count_pending(session: Session, scope: Scope) -> tuple[int, bool]:
    """How many decisions wait for a check, up to COUNT_CAP; and whether capped."""
    ids = _pending(scope).with_only_columns(ReviewDecision.id).limit(COUNT_CAP + 1).subquery()
    count = session.scalar(select(func.count()).select_from(ids)) or 0
    return min(count, COUNT_CAP), count > COUNT_CAP


def waiting(session: Session, decision_id: int) -> Pending:
    """One decision waiting for a check; the reason it is not, as a typed error, otherwise."""
    row = session.execute(_pending(Scope()).where(ReviewDecision.id == decision_id)).first()
    if row is None:
        raise _refusal(session, session.get(ReviewDecision, decision_id), decision_id)
    decision, name, prompt, collection = row
    return Pending(decision, name, prompt or "", collection)


def _refusal(session: Session, decision: ReviewDecision | None, decision_id: int) -> SiftError:
    """Why a decision cannot be checked (or NotFound)."""
    if decision is None:
        return NotFound(f"no decision {decision_id}")
    if decision.checked_at is not None:
        who = session.scalar(select(User.name).where(User.id == decision.checked_by))
        return Conflict(
            f"decision {decision_id} was already {_said(decision.check)} by {who}",
            check=decision.check,
        )
    if decision.undone_at is not None:
        return Conflict(f"decision {decision_id} was undone: there is nothing to check")
    if decision.action not in CHECKED:
        return InvalidInput(f"a {decision.action} is not checked", field="decision")
    return InvalidInput(f"decision {decision_id} is a lead's: leads' decisions are not checked")


def _open_decision(session: Session, lead: User, decision_id: int) -> ReviewDecision:
    """The decision, row-locked, checked to be an annotator's and not yet checked."""
    if not lead.has_role(Role.LEAD):
        raise Forbidden("only a lead checks annotators' decisions")
    decision = session.get(ReviewDecision, decision_id, with_for_update=True)
    if decision is None or decision.checked_at is not None or decision.undone_at is not None:
        raise _refusal(session, decision, decision_id)
    waiting(session, decision_id)  # an annotator's, of a kind that is checked
    return decision


def _said(check: str | None) -> str:
    return (check or "").replace("_", " ")


def _mark(
    session: Session, decision: ReviewDecision, lead: User, check: ReviewCheck, note: str
) -> None:
    decision.check = check.value
    decision.check_note = note or None
    decision.checked_by = lead.id
    decision.checked_at = utcnow()
    session.flush()


def _note(note: str, *, required: bool) -> str:
    note = note.strip()
    if required and not note:
        raise InvalidInput("say what the annotator should do again", field="note")
    if len(note) > MAX_NOTE:
        raise InvalidInput(f"the note is longer than {MAX_NOTE:,} characters", field="note")
    return note


def approve(session: Session, lead: User, decision_id: int, note: str = "") -> ReviewDecision:
    """The lead agrees with the annotator's decision or edit."""
    decision = _open_decision(session, lead, decision_id)
    _mark(session, decision, lead, ReviewCheck.APPROVED, _note(note, required=False))
    return decision


def mark_fixed(session: Session, lead: User, decision_id: int, note: str = "") -> ReviewDecision:
    """Approve a decision whose example the lead has just edited (the edit is its own revision)."""
    decision = _open_decision(session, lead, decision_id)
    _mark(session, decision, lead, ReviewCheck.FIXED, _note(note, required=False))
    return decision


def send_back(session: Session, lead: User, decision_id: int, note: str) -> ReviewDecision:
    """Withdraw an annotator's accept or reject (the example's status goes back to what it was,
    or to what the remaining votes settle) or flag an edit, with a note; the annotator's queue
    hands the example back to them first."""
    note = _note(note, required=True)
    decision = _open_decision(session, lead, decision_id)
    if decision.action in consensus.VOTES:
        example = session.get(Example, decision.example_id, with_for_update={"key_share": True})
        assert example is not None  # decisions are deleted with their example
        example.status = _status_without(session, decision, example)
        decision.undone_at = utcnow()
    _mark(session, decision, lead, ReviewCheck.SENT_BACK, note)
    return decision


def _status_without(session: Session, decision: ReviewDecision, example: Example) -> str:
    """The example's status once this accept or reject no longer counts."""
    collection = session.get(Collection, decision.collection_id) if decision.collection_id else None
    if collection is not None and collection.overlap > 1:
        votes = consensus.latest_votes(session, collection, example.id)
        votes.pop(decision.user_id or 0, None)
        if len(votes) < collection.overlap:
            return ExampleStatus.CANDIDATE.value
        outcome = consensus.rule_outcome(list(votes.values()), collection.consensus)
        return outcome or ExampleStatus.CANDIDATE.value
    later = session.scalar(
        select(ReviewDecision.id).where(
            ReviewDecision.example_id == example.id,
            ReviewDecision.id > decision.id,
            ReviewDecision.undone_at.is_(None),
            ReviewDecision.action.in_(consensus.VOTES),
        )
    )
    if later is not None:
        raise Conflict(
            f"example {example.id} was decided again since (decision {later}): "
            "check that decision instead"
        )
    return decision.status_before


@dataclass(frozen=True)
class SentBack:
    """A decision a lead sent back to its annotator, not yet done again."""

    decision_id: int
    example_id: int
    action: str
    note: str
    lead: str
    when: datetime
    collection: str | None
    prompt: str


def sent_back_to(
    session: Session, user: User, limit: int = 50, example_id: int | None = None
) -> list[SentBack]:
    """What leads sent back to this annotator that they have not decided again, oldest first
    (about one example, when given)."""
    lead = aliased(User)
    rows = session.execute(
        select(ReviewDecision, lead.name, Collection.name, Example.instruction)
        .join(lead, lead.id == ReviewDecision.checked_by, isouter=True)
        .join(Example, Example.id == ReviewDecision.example_id)
        .outerjoin(Collection, Collection.id == ReviewDecision.collection_id)
        .where(
            ReviewDecision.user_id == user.id,
            ReviewDecision.check == ReviewCheck.SENT_BACK.value,
            ~redone_since(ReviewDecision, user),
            ReviewDecision.example_id == example_id if example_id is not None else true(),
        )
        .order_by(ReviewDecision.id)
        .limit(limit)
    )
    return [
        SentBack(
            d.id,
            d.example_id,
            d.action,
            d.check_note or "",
            name or "a lead",
            d.checked_at or d.created_at,
            coll,
            prompt or "",
        )
        for d, name, coll, prompt in rows
    ]


def sent_back_note(session: Session, user: User, example_id: int) -> SentBack | None:
    """The lead's note to this user on this example, while they have not done it again."""
    return next(iter(sent_back_to(session, user, 1, example_id)), None)


def check_counts(session: Session, user: User) -> dict[str, int]:
    """How leads checked this annotator's decisions: approved, fixed, sent back."""
    rows = session.execute(
        select(ReviewDecision.check, func.count())
        .where(ReviewDecision.user_id == user.id, ReviewDecision.check.is_not(None))
        .group_by(ReviewDecision.check)
    )
    return {check or "": count for check, count in rows}


def decided_today(session: Session, user: User) -> int:
    """How many live decisions and edits this user made since midnight UTC."""
    midnight = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    return (
        session.scalar(
            select(func.count()).where(
                ReviewDecision.user_id == user.id,
                ReviewDecision.created_at >= midnight,
                ReviewDecision.undone_at.is_(None),
                ReviewDecision.action.in_(CHECKED),
            )
        )
        or 0
    )
