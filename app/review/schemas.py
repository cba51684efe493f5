"""Shapes of the review API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from app.datasets.service import ExampleOut
from app.platform.jobs.schemas import JobOut
from app.platform.validation import Id
from app.review.question_schemas import QuestionAgreementOut


class QueueIn(BaseModel):
    """A queue: a collection or a dataset, narrowed by the same filters as the pages."""

    collection: str = ""
    dataset: str = ""
    source: str = ""
    status: str = "candidate"
    q: str = ""
    score: str = Field("", description="score filters, e.g. alpagasus>=4.5,lima>0.5")


class NextOut(BaseModel):
    example: ExampleOut | None = Field(description="null when nothing waits in the queue")
    lease_expires_at: datetime | None


class DecisionIn(QueueIn):
    action: Literal["accept", "reject", "skip"]
    version: int = Field(description="the version the decision was made on")
    reason: str = ""
    answers: dict[str, Any] = Field(
        default_factory=dict, description="answers to the collection's questions, by key"
    )


class DecisionOut(BaseModel):
    id: int
    example_id: int
    action: str
    reason: str
    status_before: str
    created_at: datetime


class UndoOut(BaseModel):
    example_id: int | None = Field(description="null when the undone decision wrote an example")


class PairKappaOut(BaseModel):
    a: str
    b: str
    kappa: float | None = Field(description="null where undefined (one category, or n = 0)")
    n: int


class AnnotatorAgreementOut(BaseModel):
    annotator: str
    decisions: int
    settled: int = Field(description="of their examples, how many have a settled status")
    agree_with_consensus: float | None


class AgreementOut(BaseModel):
    krippendorff_alpha: float | None = Field(description="nominal, over accept and reject")
    fleiss_kappa: float | None
    cohen_kappa: list[PairKappaOut]
    items: int = Field(description="examples with at least one decision")
    annotators: list[AnnotatorAgreementOut]
    notes: list[str] = Field(description="why a figure is null, and what it was computed on")
    questions: list[QuestionAgreementOut] = Field(
        default_factory=list, description="Krippendorff's alpha per question, at its level"
    )


class BulkIn(BaseModel):
    """An action and the examples of the dataset it applies to: those matching the filter
    (the same as the examples list), narrowed to `ids` when given."""

    action: Literal[
        "accept", "reject", "add", "remove", "set-source", "set-category", "assign", "score"
    ]
    reason: str = Field(default="", max_length=2000)
    collection: str | None = Field(default=None, description="for add and remove")
    value: str = Field(
        default="",
        description="set-source, set-category: the value (blank clears); assign: annotators' "
        "names, comma-separated (blank: open to everyone again); score: the scorer",
    )
    endpoint: str | None = Field(default=None, description="score: the LLM endpoint")
    in_collection: str | None = Field(default=None, description="only members of a collection")
    not_in_collection: str | None = Field(
        default=None, description="only examples not in a collection (its pick list)"
    )
    source: str | None = None
    status: str | None = None
    q: str | None = None
    score: list[str] = Field(default_factory=list, description="e.g. alpagasus<3")
    ids: list[Id] | None = Field(default=None, max_length=100_000)


class BulkOut(BaseModel):
    matched: int
    counts: dict[str, int] | None = Field(description="what changed, when it ran at once")
    job: JobOut | None = Field(description="the job that runs it, for more than a few thousand")


class PendingCheckOut(BaseModel):
    decision_id: int
    example_id: int
    annotator: str
    action: str
    reason: str
    collection: str | None
    created_at: datetime


class CheckIn(BaseModel):
    outcome: Literal["approve", "fixed", "send_back"] = Field(
        description="fixed: the lead has edited the example (PATCH) and approves"
    )
    note: str = Field(default="", max_length=2000, description="required to send back")


class CheckOut(BaseModel):
    decision_id: int
    example_id: int
    check: str
    check_note: str | None
    checked_at: datetime


class SentBackOut(BaseModel):
    decision_id: int
    example_id: int
    action: str
    note: str
    lead: str
    collection: str | None
