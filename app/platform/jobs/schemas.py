"""The HTTP shape of a job, which every domain's API answers with when it starts one."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class JobOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    queue: str
    state: str
    done: int
    total: int | None
    counts: dict[str, Any]
    error: str | None
    attempts: int
    params: dict[str, Any]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    budget_usd: float | None
    spent_usd: float
