"""HTTP shapes of scorers, score jobs and score distributions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ScorerOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    version: int
    key: str
    kind: str
    prompt_template: str | None
    model: str | None
    provider: str | None
    params: dict[str, Any]
    created_at: datetime


class RecipeCreate(BaseModel):
    """A lead's own LLM rating recipe."""

    name: str = Field(pattern=r"^[a-z0-9-]{1,60}$")
    prompt_template: str = Field(min_length=1, max_length=20_000)
    parse: str = "first_number"
    low: float
    high: float
    system_prompt: str | None = Field(default=None, max_length=20_000)
    temperature: float = Field(default=0.0, ge=0, le=2)
    max_tokens: int = Field(default=256, ge=1, le=8192)
    endpoint: str | None = None


class ScoreStart(BaseModel):
    scorer: str
    endpoint: str | None = None
    model: str | None = Field(default=None, description="a local model folder (Deita scorers)")
    budget_usd: float | None = Field(default=None, gt=0)
    batch: bool = Field(default=False, description="through the OpenAI Batch API, at its price")


class Bin(BaseModel):
    low: float
    high: float
    count: int


class ValueCount(BaseModel):
    value: float
    count: int


class Histogram(BaseModel):
    scorer: str
    version: int
    key: str
    model: str | None
    total: int
    states: dict[str, int]
    min: float | None
    max: float | None
    mean: float | None
    bins: list[Bin]
    values: list[ValueCount] | None


class ScoreSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    scorer: str
    kind: str
    model: str | None
    scored: int
