"""JSON API for review: take the next example of a queue, decide on it, undo."""

from __future__ import annotations

from fastapi import APIRouter, Query, Response
from sqlalchemy.orm import Session

from app.collections.service import get_collection
from app.datasets.service import example_out, get_dataset
from app.models import ReviewAction, User
from app.platform.db import DB
from app.platform.jobs.schemas import JobOut
from app.platform.security import ApiAnnotator, ApiLead
from app.platform.validation import Id
from app.review import question_routes, second_pass, service
from app.review import queue as queues
from app.review.answer_agreement import question_agreement
from app.review.bulk import BulkAction, start_bulk
from app.review.schemas import (
    AgreementOut,
    BulkIn,
    BulkOut,
    CheckIn,
    CheckOut,
    DecisionIn,
    DecisionOut,
    NextOut,
    PendingCheckOut,
    QueueIn,
    SentBackOut,
    UndoOut,
)

router = APIRouter(prefix="/api/v1", tags=["review"])
router.include_router(question_routes.router)


def _queue(session: Session, spec: QueueIn, user: User) -> queues.Queue:
    return queues.open_queue(
        session,
        user=user,
        collection=spec.collection,
        dataset=spec.dataset,
        source=spec.source,
        status=spec.status,
        q=spec.q,
        score=spec.score,
    )


@router.post("/review/next", response_model=NextOut)
def take_next(spec: QueueIn, session: DB, user: ApiAnnotator) -> NextOut:
    """Lease the queue's next example to the caller (the one they hold already comes first)."""
    example = queues.next_example(session, _queue(session, spec, user), user)
    if example is None:
        return NextOut(example=None, lease_expires_at=None)
    lease = queues.holder(session, example.id)
    return NextOut(example=example_out(example), lease_expires_at=lease and lease.expires_at)


@router.post("/review/examples/{example_id}/decision", response_model=DecisionOut, status_code=201)
def decide(example_id: Id, body: DecisionIn, session: DB, user: ApiAnnotator) -> DecisionOut:
    """Accept, reject (with a reason) or skip; 409 when the example changed or is held."""
    queue = _queue(session, body, user) if body.collection or body.dataset else None
    decision = service.decide(
        session,
        user,
        example_id,
        ReviewAction(body.action),
        version=body.version,
        reason=body.reason,
        queue=queue,
        answers=body.answers,
    )
    return DecisionOut.model_validate(decision, from_attributes=True)


@router.post("/review/undo", response_model=UndoOut)
def undo(session: DB, user: ApiAnnotator) -> UndoOut:
    """Undo the caller's last decision."""
    return UndoOut(example_id=service.undo_last(session, user))


@router.get("/review/checks", response_model=list[PendingCheckOut])
def pending_checks(
    session: DB, _: ApiLead, collection: str = "", dataset: str = "", after: int = 0,
    limit: int = Query(50, ge=1, le=500),
) -> list[PendingCheckOut]:  # fmt: skip
    """Annotators' decisions and edits waiting for a lead's check, oldest first (page on with
    `after`, the last decision id seen)."""
    scope = second_pass.Scope(
        collection=get_collection(session, collection) if collection else None,
        dataset=get_dataset(session, dataset) if dataset else None,
    )
    return [
        PendingCheckOut(
            decision_id=p.decision.id,
            example_id=p.decision.example_id,
            annotator=p.annotator,
            action=p.decision.action,
            reason=p.decision.reason,
            collection=p.collection,
            created_at=p.decision.created_at,
        )
        for p in second_pass.pending(session, scope, after=after, limit=limit)
    ]


@router.post("/review/decisions/{decision_id}/check", response_model=CheckOut)
def check(decision_id: Id, body: CheckIn, session: DB, user: ApiLead) -> CheckOut:
    """Approve an annotator's decision, mark it fixed (after editing the example), or send it
    back with a note (an accept or reject is withdrawn); 409 when it was checked already."""
    act = {
        "approve": second_pass.approve,
        "fixed": second_pass.mark_fixed,
        "send_back": second_pass.send_back,
    }[body.outcome]
    decision = act(session, user, decision_id, body.note)
    return CheckOut(
        decision_id=decision.id, example_id=decision.example_id, check=decision.check or "",
        check_note=decision.check_note, checked_at=decision.checked_at,
    )  # fmt: skip


@router.get("/review/sent-back", response_model=list[SentBackOut])
def sent_back(session: DB, user: ApiAnnotator) -> list[SentBackOut]:
    """What leads sent back to the caller and they have not done again, with the notes."""
    return [
        SentBackOut(
            decision_id=s.decision_id,
            example_id=s.example_id,
            action=s.action,
            note=s.note,
            lead=s.lead,
            collection=s.collection,
        )
        for s in second_pass.sent_back_to(session, user, limit=500)
    ]


@router.get("/collections/{name}/agreement", response_model=AgreementOut)
def agreement(name: str, session: DB, _: ApiLead) -> AgreementOut:
    """How far the collection's annotators agree: Krippendorff's alpha, Fleiss' kappa, Cohen's
    kappa per pair, each one against the settled statuses, and alpha per question."""
    collection = get_collection(session, name)
    figures = service.collection_agreement(session, collection).as_json()
    figures["questions"] = [q.as_json() for q in question_agreement(session, collection)]
    return AgreementOut.model_validate(figures)


@router.post("/datasets/{name}/examples/bulk", response_model=BulkOut)
def bulk(name: str, body: BulkIn, session: DB, user: ApiLead, response: Response) -> BulkOut:
    """Accept, reject (with a reason), add to a collection or remove from it, set the source or
    category, assign to annotators or score every example of the dataset that matches the
    filter: at once for a few thousand (200), as a job beyond (202; "score" always starts a
    score job on the selection). Examples someone else holds in review are left alone, and
    counted."""
    dataset = get_dataset(session, name)
    action = BulkAction(**body.model_dump())
    matched, counts, job = start_bulk(session, user, dataset, action)
    if job is not None:
        response.status_code = 202
    return BulkOut(matched=matched, counts=counts, job=JobOut.model_validate(job) if job else None)


@router.post("/collections/{name}/examples/bulk", response_model=BulkOut)
def collection_bulk(
    name: str, body: BulkIn, session: DB, user: ApiLead, response: Response
) -> BulkOut:
    """The same actions on the collection's members (across its datasets) that match the
    filter, narrowed to `ids` when given."""
    get_collection(session, name)
    action = BulkAction(**(body.model_dump() | {"in_collection": name}))
    matched, counts, job = start_bulk(session, user, None, action)
    if job is not None:
        response.status_code = 202
    return BulkOut(matched=matched, counts=counts, job=JobOut.model_validate(job) if job else None)
