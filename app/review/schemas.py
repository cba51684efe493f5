"""Shapes of the review API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from app.datasets.service import ExampleOut


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
