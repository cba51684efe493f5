"""HTTP shapes of generation requests, estimates and provenance."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from app.generation.spec import GenerationSpec


class GenerateIn(BaseModel):
    """A generation run over the dataset named in the path."""

    method: str = Field(description="self-instruct | evol-instruct | evol-quality")
    into: str = Field(min_length=1, max_length=200, description="created if missing")
    n: int | None = Field(default=None, ge=1, description="new tasks, or parents to evolve")
    rounds: int | None = Field(default=None, ge=1)
    endpoint: str = "default"
    budget_usd: float | None = Field(default=None, gt=0)
    variant: str = Field(default="alpaca", description="self-instruct: alpaca | self-instruct")
    seed: int = 0
    operations: list[str] = Field(default_factory=list)
    batch: bool = Field(default=False, description="through the OpenAI Batch API, at its price")

    def spec(self, source: str) -> GenerationSpec:
        """The run this request asks for, reading from `source`."""
        return GenerationSpec(source=source, **self.model_dump())


class EstimateOut(BaseModel):
    method: str
    calls: int
    inputs: int
    rounds: int
    max_cost_usd: float | None
    endpoint: str
    model: str
    note: str


class VariantOut(BaseModel):
    example_id: int
    round: int
    operation: str | None
    output: str
    dataset: str


class ProvenanceOut(BaseModel):
    example_id: int
    method: str
    round: int
    parent_example_id: int | None
    prompt: str
    endpoint: str
    model: str
    job_id: int | None
    variant_group: int | None
    details: dict[str, Any]
    created_at: datetime
    variants: list[VariantOut]
