"""A job's state changes outside its work: claiming it, pausing it, recording its end. Each is
one conditional statement in a short transaction of its own, so a cancel always wins."""

from __future__ import annotations

from sqlalchemy import func, update
from sqlalchemy.orm import Session

from app.models import Job, JobState
from app.models.base import utcnow
from app.platform.db import retrying
from app.platform.jobs.progress import PAUSED_NOTE


def claim_job(job_id: int) -> Job | None:
    """Mark a queued job running, in one statement; None when it is not queued (a second
    delivery of its message, or a job cancelled, paused or finished meanwhile)."""

    def claim(session: Session) -> Job | None:
        now = utcnow()
        job = session.scalar(
            update(Job)
            .where(Job.id == job_id, Job.state == JobState.QUEUED.value)
            .values(
                state=JobState.RUNNING.value,
                attempts=Job.attempts + 1,
                started_at=func.coalesce(Job.started_at, now),
                heartbeat_at=now,
                error=None,
            )
            .returning(Job)
        )
        return job

    return retrying(claim)


def pause_job(job_id: int) -> None:
    """Leave a running job waiting as paused_budget until someone resumes it."""
    retrying(
        lambda session: session.execute(
            update(Job)
            .where(Job.id == job_id, Job.state == JobState.RUNNING.value)
            .values(state=JobState.PAUSED_BUDGET.value, error=PAUSED_NOTE)
        )
    )


def finish_job(job_id: int, state: JobState, error: str | None = None) -> None:
    """Record a job's end, unless it has already ended (a cancel wins)."""
    retrying(
        lambda session: session.execute(
            update(Job)
            .where(Job.id == job_id, Job.state.in_([JobState.QUEUED.value, JobState.RUNNING.value]))
            .values(state=state.value, error=error, finished_at=utcnow())
        )
    )
