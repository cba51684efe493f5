"""The pages' side of questions: a lead adds and removes them on the collection dashboard and
filters its examples by answer; annotators' answers come with a decision's form, or alone
from the review page's own Save button."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.collections.service import get_collection
from app.datasets.service import get_example
from app.platform.db import DB
from app.platform.errors import SiftError
from app.platform.validation import Id
from app.platform.web import PageLead, PageUser, check_csrf, render
from app.review import answer_stats, questions

router = APIRouter(dependencies=[Depends(check_csrf)], include_in_schema=False)
PREFIX = "answer."


async def answer_fields(request: Request) -> dict[str, list[str]]:
    """The form's `answer.KEY` fields by key, every value (several labels give several)."""
    form = await request.form()
    fields: dict[str, list[str]] = {}
    for name, value in form.multi_items():
        if name.startswith(PREFIX) and isinstance(value, str):
            fields.setdefault(name.removeprefix(PREFIX), []).append(value)
    return fields


def form_answers(
    request: Request,
    session: DB,
    fields: Annotated[dict[str, list[str]], Depends(answer_fields)],
) -> dict[str, Any]:
    """The answers a review form carries, read against the questions of the collection whose
    queue it was sent from ({} outside a collection's queue)."""
    name = request.query_params.get("collection", "")
    if not fields or not name:
        return {}
    asked = questions.list_questions(session, get_collection(session, name))
    return questions.from_form(asked, fields)


FormAnswers = Annotated[dict[str, Any], Depends(form_answers)]


def _dashboard(name: str, **query: str) -> str:
    suffix = "?" + urlencode(query) if query else ""
    return f"/collections/{quote(name, safe='')}{suffix}#questions"


@router.post("/review/examples/{example_id}/answers")
def save_answers(
    request: Request, example_id: Id, session: DB, user: PageUser, answers: FormAnswers
) -> Response:
    """Save this person's answers about the example and show it again."""
    name = request.query_params.get("collection", "")
    get_example(session, example_id)  # 404 for one that does not exist
    if name:
        questions.save_answers(session, user, get_collection(session, name), example_id, answers)
    query = urlencode({**request.query_params, "answered": 1})
    return RedirectResponse(f"/review/examples/{example_id}?{query}#questions", status_code=303)


@router.post("/collections/{name}/questions")
def add_question(
    name: str,
    session: DB,
    user: PageLead,
    key: Annotated[str, Form()] = "",
    kind: Annotated[str, Form()] = "",
    prompt: Annotated[str, Form()] = "",
    options: Annotated[str, Form()] = "",
    required: Annotated[str, Form()] = "",
) -> Response:
    """Ask a new question; a mistake is shown beside the form."""
    collection = get_collection(session, name)
    spec = questions.QuestionSpec(
        key, kind, prompt, [o for o in options.replace("\n", ",").split(",")], bool(required)
    )
    try:
        with session.begin_nested():
            questions.add_question(session, collection, spec, user)
    except SiftError as exc:
        return RedirectResponse(_dashboard(name, question_error=exc.message), status_code=303)
    return RedirectResponse(_dashboard(name), status_code=303)


@router.post("/collections/{name}/questions/{key}/remove")
def remove_question(name: str, key: str, session: DB, user: PageLead) -> Response:
    """Stop asking a question (its answers go with it)."""
    questions.remove_question(session, get_collection(session, name), key)
    return RedirectResponse(_dashboard(name), status_code=303)


@router.get("/collections/{name}/answers")
def filter_by_answer(
    request: Request,
    name: str,
    session: DB,
    user: PageLead,
    question: str = "",
    value: str = "",
    annotator: str = "",
) -> HTMLResponse:
    """The collection's examples that got an answer to a question (a bar of the dashboard's
    distributions links here)."""
    collection = get_collection(session, name)
    asked = questions.list_questions(session, collection)
    found: list[answer_stats.AnsweredExample] = []
    total, error = 0, None
    if question and value:
        try:
            found, total = answer_stats.examples_answered(
                session, collection, question, value, annotator
            )
        except SiftError as exc:
            error = exc.message
    context = {
        "user": user,
        "section": "collections",
        "collection": collection,
        "base": f"/collections/{quote(name, safe='')}",
        "asked": asked,
        "question": question,
        "value": value,
        "annotator": annotator,
        "found": found,
        "total": total,
        "error": error,
        "limit": answer_stats.FILTER_LIMIT,
    }
    status = 422 if error else 200
    return render(request, "review/answers_filter.html", context, status_code=status)
