"""Listing, cancelling and resuming jobs (creating and sending them: app.platform.jobs.dispatch)."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from app.models import ChunkState, Job, JobChunk, JobState
from app.models.base import utcnow
from app.platform.errors import Conflict, InvalidInput
from app.platform.jobs.dispatch import get_job, send_job
from app.platform.llm.batch_status import reserved_by_open_batches, waiting_on_batches


def list_jobs(session: Session, limit: int = 50, active_only: bool = False) -> list[Job]:
    """The newest jobs first."""
    query = select(Job).order_by(Job.id.desc()).limit(limit)
    if active_only:
        query = query.where(Job.state.in_([JobState.QUEUED.value, JobState.RUNNING.value]))
    jobs = list(session.scalars(query))
    show_chunk_progress(session, jobs)
    return jobs


def outlook(session: Session, jobs: list[Job]) -> dict[int, str]:
    """A line for each job that can still move: how long a running one has left (at its pace
    so far), and what a queued one waits behind (the running jobs of its queue)."""
    running = session.execute(
        select(Job.queue, func.min(Job.id), func.count())
        .where(Job.state == JobState.RUNNING.value)
        .group_by(Job.queue)
    )
    busy = {queue: (first, count) for queue, first, count in running}
    lines = {}
    now = utcnow()
    batched = waiting_on_batches(session, [j.id for j in jobs if j.state == JobState.QUEUED.value])
    for job in jobs:
        if job.id in batched:
            lines[job.id] = "waiting for its Batch API batch"
        elif job.state == JobState.RUNNING.value and job.started_at and job.total and job.done:
            elapsed = (now - job.started_at).total_seconds()
            left = elapsed * (job.total - job.done) / job.done
            lines[job.id] = f"about {_duration(left)} left"
        elif job.state == JobState.QUEUED.value:
            first, count = busy.get(job.queue, (None, 0))
            lines[job.id] = (
                f"waiting behind job {first}" + (f" and {count - 1} more" if count > 1 else "")
                if first is not None
                else "waiting for a worker"
            )
    return lines


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def show_chunk_progress(session: Session, jobs: list[Job]) -> None:
    """Let running chunked jobs show how far their chunks are now (the job's row is
    recomputed only when a chunk ends): loaded values only, nothing is written."""
    running = {job.id: job for job in jobs if job.state == JobState.RUNNING.value}
    if not running:
        return
    planned = func.sum(JobChunk.params["size"].as_integer())
    rows = session.execute(
        select(JobChunk.job_id, func.sum(JobChunk.done), planned)
        .where(JobChunk.job_id.in_(list(running)))
        .group_by(JobChunk.job_id)
    )
    for job_id, done, size in rows:
        job = running[job_id]
        # As `chunks._job_done`: what needed no chunk, and what each chunk has done.
        set_committed_value(job, "done", max((job.total or 0) - (size or 0), 0) + int(done))


def cancel_job(session: Session, job_id: int) -> Job:
    """Cancel a job that has not ended; a running task stops at its next progress report, and
    its uncommitted work rolls back. Nothing that a job holds makes this wait."""
    job = get_job(session, job_id)
    if job.state == JobState.CANCELLED.value:
        return job  # cancelling twice is not an error
    if job.is_terminal:
        raise Conflict(f"job {job_id} has already {job.state}", state=job.state)
    job.state = JobState.CANCELLED.value
    job.finished_at = utcnow()
    return job


def resume_job(session: Session, job_id: int, *, budget_usd: float | None = None) -> Job:
    """Queue any job that is not running again, optionally with a new budget; its task skips
    what is already written (a queued job's message is sent again)."""
    job = get_job(session, job_id)
    if job.state == JobState.RUNNING.value:
        raise Conflict(f"job {job_id} is running; cancel it first to start it again")
    if budget_usd is not None:
        if job.budget_usd is None:
            raise Conflict(f"job {job_id} has no budget to raise")
        if budget_usd < job.spent_usd:
            raise InvalidInput(
                f"budget_usd: {budget_usd} is below what job {job_id} has spent ({job.spent_usd})"
            )
        job.budget_usd = budget_usd
    # Nothing of this job is running now: what was reserved and never settled was lost with
    # the calls of a dead or stopped worker; only its Batch API batches still run, and keep
    # theirs (the resumed job polls them).
    job.reserved_usd = reserved_by_open_batches(session, job_id)
    job.state = JobState.QUEUED.value
    job.error = None
    job.attempts = 0
    job.finished_at = None
    session.execute(
        update(JobChunk)
        .where(JobChunk.job_id == job_id, JobChunk.state != ChunkState.DONE.value)
        .values(attempts=0)
    )
    send_job(session, job)
    return job
