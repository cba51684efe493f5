"""HTTP shapes of collections, snapshots and selection recipes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class CollectionCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    target_size: int = Field(default=1000, ge=1, le=10_000_000)
    quotas: dict[str, dict[str, int]] = Field(
        default_factory=dict, description='e.g. {"source": {"wikihow": 200}}'
    )
    description: str = ""
    guidelines: str = ""


class CollectionOut(BaseModel):
    name: str
    description: str
    target_size: int
    size: int
    quotas: dict[str, dict[str, int]]
    filled: dict[str, dict[str, int]] = Field(description="examples held per quota group")
    recipes: list[dict[str, Any]]
    created_at: datetime


class ItemsIn(BaseModel):
    example_ids: list[int] = Field(min_length=1, max_length=100_000)
    reason: str = ""


class ItemsOut(BaseModel):
    changed: int
    size: int


class SnapshotCreate(BaseModel):
    note: str = ""


class SnapshotOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    digest: str
    example_count: int
    note: str
    created_at: datetime


class SnapshotDiff(BaseModel):
    added: list[int]
    removed: list[int]
    edited: list[int]


class SelectionIn(BaseModel):
    """A selection recipe (see `sift select --help`)."""

    dataset: str
    method: str = Field(description="threshold | deita | lima-quota | random")
    budget: int | None = Field(default=None, ge=0)
    filters: list[str] = Field(default_factory=list, description="e.g. alpagasus>=4.5")
    source: str | None = None
    scorer: str | None = None
    threshold: float = Field(default=0.9, gt=-1, le=1)
    embedding_model: str | None = None
    group_by: str = "source"
    tau: float = Field(default=3.0, gt=0)
    quotas: dict[str, int] | None = None
    one_per_cluster: str | None = None
    seed: int = 0
    name: str | None = Field(default=None, description="save the recipe under this name")


class Distribution(BaseModel):
    count: int
    mean: float | None
    bins: list[dict[str, float]]


class PreviewOut(BaseModel):
    method: str
    pool: int
    selected: int
    groups_before: dict[str, int]
    groups_after: dict[str, int]
    example_ids: list[int] = Field(description="the first 1,000 picked, in order")
    scorer: str | None = None
    scores_before: Distribution | None = None
    scores_after: Distribution | None = None
