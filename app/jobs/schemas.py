"""HTTP input of the jobs API (its output, JobOut: app.platform.jobs.schemas)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ResumeIn(BaseModel):
    budget_usd: float | None = Field(default=None, gt=0)
