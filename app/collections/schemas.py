"""HTTP shapes of collections, snapshots and selection recipes."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.dataclasses import dataclass

from app.platform.validation import Id
from app.selection.service import SelectionSpec


class CollectionCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    target_size: int = Field(default=1000, ge=1, le=10_000_000)
    quotas: dict[str, dict[str, int]] = Field(
        default_factory=dict, description='e.g. {"source": {"wikihow": 200}}'
    )
    description: str = ""
    guidelines: str = ""
    overlap: int = Field(default=1, description="different annotators who decide each example")
    consensus: str = Field(default="majority", description="majority or unanimous")


class CollectionPatch(BaseModel):
    name: str | None = Field(default=None, description="a new name")
    overlap: int | None = None
    consensus: str | None = None


class CollectionOut(BaseModel):
    name: str
    description: str
    overlap: int
    consensus: str
    target_size: int
    size: int
    quotas: dict[str, dict[str, int]]
    filled: dict[str, dict[str, int]] = Field(description="examples held per quota group")
    recipes: list[dict[str, Any]]
    created_at: datetime


class ItemsIn(BaseModel):
    example_ids: list[Id] = Field(min_length=1, max_length=100_000)
    reason: str = ""


class ItemsOut(BaseModel):
    changed: int
    size: int


class SnapshotCreate(BaseModel):
    note: str = ""
    # Freeze the accepted examples only; otherwise accepted and unreviewed ones (rejected
    # examples are never frozen).
    only_accepted: bool = False


class SnapshotOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    digest: str
    example_count: int
    note: str
    only_accepted: bool
    left_out: dict[str, int]
    created_at: datetime


class SnapshotDiff(BaseModel):
    added: list[int]
    removed: list[int]
    edited: list[int]


@dataclass
class SelectionIn(SelectionSpec):
    """A selection recipe (see `sift select --help`): the spec's own rules, and a name."""

    name: str | None = Field(default=None, description="save the recipe under this name")
    collection: str | None = Field(
        default=None,
        description="preview: k-center and facility-location start from what it holds",
    )

    def spec(self) -> SelectionSpec:
        """The recipe without its name and collection."""
        extra = ("name", "collection")
        return SelectionSpec(**{k: v for k, v in asdict(self).items() if k not in extra})


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
    note: str | None = Field(default=None, description="how the method approximated, if it did")
