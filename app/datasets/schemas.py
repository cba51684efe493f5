"""HTTP shapes of datasets and examples."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.models import Example


class DatasetCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    description: str = ""


class DatasetUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=10_000)


class DatasetOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    description: str
    example_count: int
    created_at: datetime


class Message(BaseModel):
    role: str
    content: str


class ExampleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    dataset: str
    messages: list[Message]
    instruction: str | None
    input: str | None
    output: str | None
    source: str | None
    category: str | None
    meta: dict[str, Any]
    external_id: str | None
    content_hash: str
    origin: str
    status: str
    version: int
    created_at: datetime
    updated_at: datetime | None


class ExamplePage(BaseModel):
    items: list[ExampleOut]
    next_after: int | None = Field(
        description="pass as `after` to get the next page; null on the last page"
    )


class ExamplePatch(BaseModel):
    """The fields to change; leave out what stays."""

    model_config = ConfigDict(extra="forbid")

    messages: list[Message] | None = None
    instruction: str | None = None
    input: str | None = None
    output: str | None = None
    source: str | None = None
    category: str | None = None
    status: str | None = None
    meta: dict[str, Any] | None = None
    reason: str = ""


def example_out(example: Example) -> ExampleOut:
    """The API shape of an example."""
    return ExampleOut.model_validate(
        {
            **{c: getattr(example, c) for c in ExampleOut.model_fields if c != "dataset"},
            "dataset": example.dataset.name,
        }
    )
