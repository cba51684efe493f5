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
