"""The review pages: pick a queue, take the next example, decide, edit, write, undo."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from app.collections.service import list_collections
from app.datasets.service import all_datasets, get_dataset, get_example
from app.generation.service import provenance_for
from app.models import Example, ExampleStatus, ReviewAction, Role, User
from app.platform.db import DB
from app.platform.errors import InvalidInput, SiftError
from app.platform.validation import Id
from app.platform.web import PageLead, PageUser, check_csrf, render
from app.review import bulk_page, question_pages, second_pass, second_pass_page, service
from app.review import context as seen
from app.review import queue as queues
from app.review.answer_form import asked_context
from app.review.diff import turn_diffs
from app.review.forms import edited_turns
from app.review.queue_table import queue_table

router = APIRouter(dependencies=[Depends(check_csrf)], include_in_schema=False)
router.include_router(bulk_page.router)
router.include_router(second_pass_page.router)
router.include_router(question_pages.router)


def current_queue(request: Request, session: DB, user: PageUser) -> queues.Queue | None:
    """The queue named in the query string, or None when it names none."""
    params = request.query_params
    if not params.get("collection") and not params.get("dataset"):
        return None
    return queues.open_queue(
        session,
        user=user,
        collection=params.get("collection", ""),
        dataset=params.get("dataset", ""),
        source=params.get("source", ""),
        status=params.get("status", ExampleStatus.CANDIDATE.value),
        q=params.get("q", ""),
        score=params.get("score", ""),
        similar_to=params.get("similar_to", ""),
    )


QueueParam = Annotated[queues.Queue | None, Depends(current_queue)]


def _query(queue: queues.Queue | None, **extra: object) -> str:
    values = {**(queue.params if queue else {}), **{k: v for k, v in extra.items() if v}}
    return "?" + urlencode(values) if values else ""


def _queue_of(queue: queues.Queue | None, example: Example) -> queues.Queue:
    """The queue a decision continues in: the one named, else the example's dataset."""
    return queue or queues.Queue(dataset=example.dataset)


def _go_next(session: Session, user: User, queue: queues.Queue, **extra: object) -> Response:
    example = queues.next_example(session, queue, user)
    if example is None:
        return RedirectResponse(f"/review/queue{_query(queue, done=1, **extra)}", status_code=303)
    return RedirectResponse(
        f"/review/examples/{example.id}{_query(queue, **extra)}", status_code=303
    )


@router.get("/review")
def review_home(request: Request, session: DB, user: PageUser) -> HTMLResponse:
    """The queues a person can review: every collection and every dataset."""
    context = {
        "user": user,
        "section": "review",
        "collections": list_collections(session),
        "datasets": all_datasets(session),
        "sent_back": second_pass.sent_back_to(session, user),
        "today": second_pass.decided_today(session, user),
        "checked": second_pass.check_counts(session, user),
        "to_check": (
            second_pass.count_pending(session, second_pass.Scope())
            if user.has_role(Role.LEAD)
            else None
        ),
    }
    return render(request, "review/home.html", context)


@router.get("/review/queue")
def queue_page(
    request: Request, session: DB, user: PageUser, queue: QueueParam, done: int = 0
) -> Response:
    """A queue: its filters, how many wait, the next few (or all by a score), bulk for leads."""
    if queue is None:
        return RedirectResponse("/review", status_code=303)
    context = {
        "user": user,
        "section": "review",
        "queue": queue,
        "query": _query(queue),
        **queue_table(session, queue, user, request.query_params),
        "statuses": [s.value for s in ExampleStatus] + ["any"],
        "done": done,
        "last": service.last_decision(session, user),
        "today": second_pass.decided_today(session, user),
    }
    return render(request, "review/queue.html", context)


@router.post("/review/next")
def take_next(session: DB, user: PageUser, queue: QueueParam) -> Response:
    """Lease the next example of the queue to this person and show it."""
    if queue is None:
        raise InvalidInput("name a collection or a dataset to review", field="collection")
    return _go_next(session, user, queue)


def _example_context(
    session: Session, user: User, example: Example, queue: queues.Queue | None
) -> dict[str, object]:
    lease = queues.holder(session, example.id)
    original = service.original_messages(session, example)
    scores = seen.scores_of(session, example)
    collection = queue.collection if queue else None
    return {
        "user": user,
        "section": "review",
        "example": example,
        "queue": queue,
        "query": _query(queue),
        "held_by_other": lease is not None and lease.user_id != user.id,
        "scores": scores,
        "stale_scores": seen.stale_scores_of(session, example, scores),
        "lima": next((s for s in scores if s.scorer == "lima"), None),
        "duplicates": seen.duplicates_of(session, example),
        "guidelines": collection.guidelines if collection else "",
        "changes": turn_diffs(original, example.messages),
        "last": service.last_decision(session, user),
        "reasons": REJECT_REASONS,
        "provenance": provenance_for(session, [example.id]).get(example.id),
        "sent_back": second_pass.sent_back_note(session, user, example.id),
        **asked_context(session, user, example, collection),
    }


TAKEN_OVER = "taken over"
REJECT_REASONS = (
    "wrong or inaccurate answer",
    "does not follow the instruction",
    "unsafe or harmful",
    "low quality writing",
    "near-duplicate",
    "not an instruction",
)


@router.get("/review/examples/{example_id}")
def example_page(
    request: Request,
    example_id: Id,
    session: DB,
    user: PageUser,
    queue: QueueParam,
    last_id: Id = 0,
    last_action: str = "",
) -> HTMLResponse:
    """One example with everything a reviewer needs beside it, and the decision buttons."""
    example = get_example(session, example_id)
    context = _example_context(session, user, example, queue)
    context["notice"] = (
        f"Example {last_id}: {last_action}."
        if last_id and last_action in {a.value for a in ReviewAction} | {"undone", TAKEN_OVER}
        else None
    )
    return render(request, "review/example.html", context)


@router.get("/review/examples/{example_id}/neighbours")
def neighbours(request: Request, example_id: Id, session: DB, user: PageUser) -> HTMLResponse:
    """The nearest examples by embedding (loaded after the page, it can take a moment)."""
    example = get_example(session, example_id)
    found, note = seen.neighbours_of(session, example)
    return render(request, "review/_neighbours.html", {"neighbours": found, "note": note})


@router.post("/review/examples/{example_id}/decide")
def decide(
    example_id: Id,
    session: DB,
    user: PageUser,
    queue: QueueParam,
    action: Annotated[str, Form()],
    version: Annotated[int, Form()],
    answers: question_pages.FormAnswers,
    reason: Annotated[str, Form()] = "",
) -> Response:
    """Accept, reject or skip (with the answers to the collection's questions), then go on to
    the next example of the queue."""
    if action not in {"accept", "reject", "skip"}:
        raise InvalidInput(f"unknown action {action!r}", field="action")
    example = get_example(session, example_id)
    service.decide(
        session,
        user,
        example_id,
        ReviewAction(action),
        version=version,
        reason=reason,
        queue=queue,
        answers=answers,
    )
    target = _queue_of(queue, example)
    return _go_next(session, user, target, last_id=example_id, last_action=action)


@router.post("/review/examples/{example_id}/edit", response_model=None)
def edit(
    request: Request,
    example_id: Id,
    session: DB,
    user: PageUser,
    queue: QueueParam,
    turns: Annotated[dict[int, str], Depends(edited_turns)],
    version: Annotated[int, Form()],
    action: Annotated[str, Form()] = "edit",
    reason: Annotated[str, Form()] = "",
) -> Response:
    """Save edited turns (or a new answer); a stale save shows both versions instead."""
    kind = ReviewAction.WRITE if action == "write" else ReviewAction.EDIT
    try:
        service.save_turns(
            session,
            user,
            example_id,
            turns,
            version=version,
            action=kind,
            reason=reason,
            queue=queue,
        )
    except service.StaleVersion:
        return _conflict(request, session, user, example_id, turns, kind, queue)
    except service.HeldBySomeone as held:
        return _held(request, session, user, example_id, turns, queue, held)
    return RedirectResponse(
        f"/review/examples/{example_id}{_query(queue, last_id=example_id, last_action=kind.value)}",
        status_code=303,
    )


def _held(
    request: Request,
    session: Session,
    user: User,
    example_id: Id,
    turns: dict[int, str],
    queue: queues.Queue | None,
    held: service.HeldBySomeone,
) -> HTMLResponse:
    """The example again with what this person typed still in the editor, who holds it and
    until when, and (for a lead) a button that takes it over and saves."""
    context = _example_context(session, user, get_example(session, example_id), queue)
    context |= {"held": held.message, "draft": turns, "can_take_over": user.has_role(Role.LEAD)}
    return render(request, "review/example.html", context, status_code=409)


@router.post("/review/examples/{example_id}/take-over", response_model=None)
def take_over(
    example_id: Id,
    session: DB,
    user: PageLead,
    queue: QueueParam,
    turns: Annotated[dict[int, str], Depends(edited_turns)],
    version: Annotated[int, Form()],
    reason: Annotated[str, Form()] = "",
) -> Response:
    """A lead takes the example over from the person holding it and saves their edit."""
    get_example(session, example_id)  # 404 for one that does not exist
    service.take_over(session, user, example_id)
    if turns:
        service.save_turns(session, user, example_id, turns, version=version, reason=reason,
                           queue=queue)  # fmt: skip
    return RedirectResponse(
        f"/review/examples/{example_id}{_query(queue, last_id=example_id, last_action=TAKEN_OVER)}",
        status_code=303,
    )


def _conflict(
    request: Request,
    session: Session,
    user: User,
    example_id: Id,
    turns: dict[int, str],
    action: ReviewAction,
    queue: queues.Queue | None,
) -> HTMLResponse:
    """Both versions side by side: what this person wrote, and what is saved now."""
    current = get_example(session, example_id)
    mine = [dict(m) for m in current.messages]
    for index, text in turns.items():
        if 0 <= index < len(mine):
            mine[index]["content"] = text
    context = {
        "user": user,
        "section": "review",
        "example": current,
        "mine": mine,
        "turns": turns,
        "action": action.value,
        "changes": turn_diffs(current.messages, mine),
        "query": _query(queue),
    }
    return render(request, "review/conflict.html", context, status_code=409)


@router.post("/review/undo")
def undo(session: DB, user: PageUser, queue: QueueParam) -> Response:
    """Undo this person's last decision and show its example again."""
    example_id = service.undo_last(session, user)
    if example_id is None:
        return RedirectResponse(f"/review/queue{_query(queue)}", status_code=303)
    return RedirectResponse(
        f"/review/examples/{example_id}{_query(queue, last_id=example_id, last_action='undone')}",
        status_code=303,
    )


def _write_page(
    request: Request,
    session: Session,
    user: User,
    queue: queues.Queue | None,
    *,
    error: SiftError | None = None,
    values: dict[str, str] | None = None,
) -> HTMLResponse:
    datasets = all_datasets(session)
    context = {
        "user": user,
        "section": "review",
        "queue": queue,
        "query": _query(queue),
        "datasets": datasets,
        "chosen": (queue.dataset.name if queue and queue.dataset else ""),
        "error": error.message if error else None,
        "field": error.detail.get("field") if error else None,
        "values": values or {},
    }
    return render(
        request, "review/write.html", context, status_code=error.status_code if error else 200
    )


@router.get("/review/write")
def write_form(request: Request, session: DB, user: PageUser, queue: QueueParam) -> HTMLResponse:
    """A form for a new prompt with a hand-written answer."""
    return _write_page(request, session, user, queue)


@router.post("/review/write", response_model=None)
def write(
    request: Request,
    session: DB,
    user: PageUser,
    queue: QueueParam,
    prompt: Annotated[str, Form()] = "",
    answer: Annotated[str, Form()] = "",
    dataset: Annotated[str, Form()] = "",
    source: Annotated[str, Form()] = "human",
    category: Annotated[str, Form()] = "",
) -> Response:
    """Add the written example (accepted) and show it."""
    values = {"prompt": prompt, "answer": answer, "dataset": dataset, "source": source}
    values["category"] = category
    try:
        target = get_dataset(session, dataset) if dataset else None
        if target is None:
            raise InvalidInput("choose the dataset the example goes into", field="dataset")
        draft = service.NewExample(
            prompt.replace("\r\n", "\n"), answer.replace("\r\n", "\n"), source, category
        )
        with session.begin_nested():
            example = service.write_example(session, user, target, draft, queue)
    except SiftError as exc:  # shown in the form, with what was typed kept
        return _write_page(request, session, user, queue, error=exc, values=values)
    return RedirectResponse(
        f"/review/examples/{example.id}{_query(queue, last_id=example.id, last_action='write')}",
        status_code=303,
    )
