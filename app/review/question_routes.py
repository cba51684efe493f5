"""JSON API for a collection's questions and the answers to them."""

from __future__ import annotations

from fastapi import APIRouter

from app.collections.service import get_collection
from app.platform.db import DB
from app.platform.security import ApiAnnotator, ApiLead
from app.platform.validation import Id
from app.review import answer_stats, questions
from app.review.question_schemas import (
    AnsweredOut,
    AnswersIn,
    AnswersOut,
    FilteredOut,
    QuestionIn,
    QuestionOut,
    RemovedOut,
)

router = APIRouter(tags=["review"])  # included in app.review.routes, under /api/v1


@router.get("/collections/{name}/questions", response_model=list[QuestionOut])
def list_questions(name: str, session: DB, _: ApiAnnotator) -> list[QuestionOut]:
    """The questions annotators answer about the collection's examples, with their answers
    counted per value."""
    collection = get_collection(session, name)
    return [
        QuestionOut(
            key=shown.key,
            kind=shown.kind,
            prompt=shown.prompt,
            options=shown.options,
            required=shown.required,
            answers=shown.answers,
            distribution={label: count for label, count, _ in shown.rows},
        )
        for shown in answer_stats.distributions(session, collection)
    ]


@router.post("/collections/{name}/questions", response_model=QuestionOut, status_code=201)
def add_question(name: str, body: QuestionIn, session: DB, user: ApiLead) -> QuestionOut:
    """Ask a new question of the collection's examples (409 when the key is taken)."""
    collection = get_collection(session, name)
    spec = questions.QuestionSpec(**body.model_dump())
    question = questions.add_question(session, collection, spec, user)
    return QuestionOut(
        key=question.key, kind=question.kind, prompt=question.prompt,
        options=question.options, required=question.required, answers=0, distribution={},
    )  # fmt: skip


@router.delete("/collections/{name}/questions/{key}", response_model=RemovedOut)
def remove_question(name: str, key: str, session: DB, _: ApiLead) -> RemovedOut:
    """Stop asking a question; its answers are deleted with it."""
    removed = questions.remove_question(session, get_collection(session, name), key)
    return RemovedOut(key=key, answers_removed=removed)


@router.post("/review/examples/{example_id}/answers", response_model=AnswersOut)
def answer(example_id: Id, body: AnswersIn, session: DB, user: ApiAnnotator) -> AnswersOut:
    """Answer questions about the example the caller's queue leased them (a lead: any example
    of the collection nobody else holds); answering again replaces the earlier answer."""
    collection = get_collection(session, body.collection)
    stored = questions.save_answers(session, user, collection, example_id, body.answers)
    return AnswersOut(example_id=example_id, answers=stored)


@router.get("/collections/{name}/answers", response_model=FilteredOut)
def filter_by_answer(
    name: str, question: str, value: str, session: DB, _: ApiLead, annotator: str = ""
) -> FilteredOut:
    """The collection's examples that got this answer to the question (from anyone, or from
    the named annotator): a rating, a label, one of several labels, or words of a text."""
    found, total = answer_stats.examples_answered(
        session, get_collection(session, name), question, value, annotator
    )
    return FilteredOut(
        total=total,
        examples=[
            AnsweredOut(id=row.example.id, status=row.example.status, answers=row.answers)
            for row in found
        ],
    )
