"""HTTP shapes of embedding and near-duplicate requests."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class EmbedStart(BaseModel):
    model: str | None = Field(default=None, max_length=1000)


class DedupStart(BaseModel):
    method: Literal["exact", "minhash", "embedding"]
    threshold: float | None = Field(default=None, gt=0, le=1)
    model: str | None = Field(default=None, max_length=1000)
    prefer: str | None = Field(default=None, max_length=200)


class ClusterOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    method: str
    size: int
    representative_id: int
    params: dict[str, Any]
    member_ids: list[int]


class ClusterPage(BaseModel):
    clusters: list[ClusterOut]
    next_after: int | None
