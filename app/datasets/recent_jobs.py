"""A dataset's newest jobs, for the panel that shows their progress."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Dataset, Job, JobState

RECENT_JOBS = 8
ACTIVE_STATES = (JobState.QUEUED.value, JobState.RUNNING.value)


def recent_jobs(session: Session, dataset: Dataset, limit: int = RECENT_JOBS) -> list[Job]:
    """The dataset's newest jobs."""
    query = select(Job).where(Job.dataset_id == dataset.id).order_by(Job.id.desc()).limit(limit)
    return list(session.scalars(query))


def any_active(jobs: list[Job]) -> bool:
    """True while one of the jobs can still move (its progress is worth polling)."""
    return any(job.state in ACTIVE_STATES for job in jobs)
