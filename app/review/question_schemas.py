"""Shapes of the questions API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class QuestionIn(BaseModel):
    key: str = Field(max_length=64, description="names the question in exports and filters")
    kind: Literal["rating", "label", "labels", "text", "ranking"]
    prompt: str = Field(default="", max_length=2000, description="the question as shown")
    options: list[str] = Field(default_factory=list, description="for label and labels")
    required: bool = Field(default=False, description="annotators answer it before deciding")


class QuestionOut(BaseModel):
    key: str
    kind: str
    prompt: str
    options: list[str]
    required: bool
    answers: int = Field(description="answers so far, every annotator's")
    distribution: dict[str, int] = Field(
        description="answers per value (ranking: per place given to the original answer)"
    )


class RemovedOut(BaseModel):
    key: str
    answers_removed: int


class AnswersIn(BaseModel):
    collection: str
    answers: dict[str, Any] = Field(
        description="question key -> value: 1-5, a label, a list of labels, text, or the "
        "group's example ids best first; null withdraws an answer"
    )


class AnswersOut(BaseModel):
    example_id: int
    answers: dict[str, Any]


class AnsweredOut(BaseModel):
    id: int
    status: str
    answers: dict[str, Any] = Field(description="annotator -> their answer to the question")


class FilteredOut(BaseModel):
    total: int
    examples: list[AnsweredOut] = Field(description="the first 100, by id")


class LabelAgreementOut(BaseModel):
    label: str
    krippendorff_alpha: float | None


class QuestionAgreementOut(BaseModel):
    key: str
    kind: str
    level: str | None = Field(description="nominal, ordinal, or null (text: not measured)")
    krippendorff_alpha: float | None
    interval_alpha: float | None = Field(description="rating: the answers read as numbers")
    items: int = Field(description="examples answered at least once")
    paired: int = Field(description="examples answered by two or more annotators")
    annotators: int
    by_label: list[LabelAgreementOut] = Field(description="labels: alpha per label")
    notes: list[str]
