"""The lead's second-pass pages: the decisions waiting for a check, and one decision at a
time with approve, fix and approve, and send back with a note."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from app.collections.service import get_collection, list_collections
from app.datasets.service import get_dataset, get_example
from app.models import Revision, User
from app.platform.answers import answers_by_example
from app.platform.db import DB
from app.platform.errors import InvalidInput, SiftError
from app.platform.validation import Id
from app.platform.web import PageLead, check_csrf, render
from app.review import consensus, second_pass, service
from app.review.diff import turn_diffs
from app.review.forms import edited_turns

router = APIRouter(dependencies=[Depends(check_csrf)], include_in_schema=False)
OUTCOMES = ("approve", "fix", "send_back")


def current_scope(session: DB, collection: str = "", dataset: str = "") -> second_pass.Scope:
    """The scope named in the query string: a collection, a dataset, or everything."""
    return second_pass.Scope(
        collection=get_collection(session, collection) if collection else None,
        dataset=get_dataset(session, dataset) if dataset else None,
    )


ScopeParam = Annotated[second_pass.Scope, Depends(current_scope)]


def _query(scope: second_pass.Scope, **extra: object) -> str:
    values = {**scope.params, **{k: v for k, v in extra.items() if v}}
    return "?" + urlencode(values) if values else ""


@router.get("/review/checks")
def checks_page(
    request: Request, session: DB, user: PageLead, scope: ScopeParam, done: int = 0
) -> HTMLResponse:
    """Annotators' decisions waiting for a lead, and the collections with disputed examples."""
    count, capped = second_pass.count_pending(session, scope)
    disputed = [
        (collection, consensus.count_disputed(session, collection))
        for collection, _ in list_collections(session)
        if collection.overlap > 1
    ]
    context = {
        "user": user,
        "section": "review",
        "scope": scope,
        "query": _query(scope),
        "count": count,
        "capped": capped,
        "pending": second_pass.pending(session, scope),
        "collections": [c for c, _ in list_collections(session)],
        "disputed": [(c, n) for c, n in disputed if n],
        "done": done,
    }
    return render(request, "review/checks.html", context)


def _check_context(
    session: Session, user: User, decision_id: int, scope: second_pass.Scope
) -> dict[str, object]:
    waiting = second_pass.waiting(session, decision_id)
    decision = waiting.decision
    example = get_example(session, decision.example_id)
    revision = session.get(Revision, decision.revision_id) if decision.revision_id else None
    changes = (
        turn_diffs(revision.before["messages"], revision.after["messages"]) if revision else []
    )
    answers = (
        answers_by_example(session, decision.collection_id, [example.id]).get(example.id, {})
        if decision.collection_id
        else {}
    )
    return {
        "user": user,
        "section": "review",
        "scope": scope,
        "query": _query(scope),
        "answers": answers,
        "decision": decision,
        "annotator": waiting.annotator,
        "collection": waiting.collection,
        "example": example,
        "changes": changes,
    }


@router.get("/review/checks/{decision_id}")
def check_page(
    request: Request, decision_id: Id, session: DB, user: PageLead, scope: ScopeParam
) -> HTMLResponse:
    """One annotator decision: the example as it stands, what the annotator did, the buttons."""
    return render(request, "review/check.html", _check_context(session, user, decision_id, scope))


@router.post("/review/checks/{decision_id}", response_model=None)
def check(
    request: Request,
    decision_id: Id,
    session: DB,
    user: PageLead,
    scope: ScopeParam,
    turns: Annotated[dict[int, str], Depends(edited_turns)],
    outcome: Annotated[str, Form()],
    note: Annotated[str, Form()] = "",
    version: Annotated[int, Form()] = 0,
) -> Response:
    """Approve, fix and approve, or send back; then the next decision waiting in the scope."""
    try:
        with session.begin_nested():
            _apply(session, user, decision_id, outcome, note, turns, version)
    except SiftError as exc:  # shown on the page, with the note and the edit kept
        context = _check_context(session, user, decision_id, scope)
        context |= {"error": exc.message, "note": note, "draft": turns}
        return render(request, "review/check.html", context, status_code=exc.status_code)
    following = second_pass.pending(session, scope, after=decision_id, limit=1)
    if following:
        target = f"/review/checks/{following[0].decision.id}{_query(scope)}"
    else:
        target = f"/review/checks{_query(scope, done=1)}"
    return RedirectResponse(target, status_code=303)


def _apply(
    session: Session,
    user: User,
    decision_id: int,
    outcome: str,
    note: str,
    turns: dict[int, str],
    version: int,
) -> None:
    if outcome not in OUTCOMES:
        raise InvalidInput(f"unknown outcome {outcome!r}", field="outcome")
    if outcome == "send_back":
        second_pass.send_back(session, user, decision_id, note)
    elif outcome == "fix":
        example_id = second_pass.waiting(session, decision_id).decision.example_id
        service.take_over(session, user, example_id)
        service.save_turns(session, user, example_id, turns, version=version, reason=note)
        second_pass.mark_fixed(session, user, decision_id, note)
    else:
        second_pass.approve(session, user, decision_id, note)
