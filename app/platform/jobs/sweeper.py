"""The sweeper: recovers the work that dead workers and lost messages left behind.

It runs every `job_sweep_interval_s` (Celery beat, or the embedded worker) and, in one short
transaction that skips any row someone else holds at that moment:
- takes back a running job or chunk whose heartbeat is older than `job_stale_after_s` (its
  worker died) and sends it again; an attempt that got further than any before it does not
  count against the attempts (the worker died, not the work), so only a job that dies at the
  same place again and again ends as failed;
- sends again a queued job, or the queued chunks of a running job that nothing works on, whose
  message went out longer ago than that (lost in a broker restart or with a killed worker);
- settles a running chunked job whose chunks have all ended (its last settle was lost).
A message sent twice is harmless: only a queued job or chunk can be claimed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy import Exists, exists, select
from sqlalchemy.orm import Session

from app.models import ChunkState, Job, JobChunk, JobState
from app.models.base import utcnow
from app.platform.config import get_settings
from app.platform.db import on_commit
from app.platform.jobs.chunked import enqueue_chunk, settle_job
from app.platform.jobs.dispatch import send_job


@dataclass
class SweepReport:
    """What one sweep did, by job or chunk id."""

    requeued_jobs: list[int] = field(default_factory=list)
    failed_jobs: list[int] = field(default_factory=list)
    resent_jobs: list[int] = field(default_factory=list)
    requeued_chunks: list[int] = field(default_factory=list)
    resent_chunks: list[int] = field(default_factory=list)
    settled_jobs: list[int] = field(default_factory=list)

    def __bool__(self) -> bool:
        return any(vars(self).values())


def sweep(session: Session) -> SweepReport:
    """Recover what dead workers and lost messages left; see the module's docstring.

    Rows it changes are read FOR NO KEY UPDATE SKIP LOCKED: a row that a worker or a person
    is writing right now is left for the next sweep instead of waited for."""
    cutoff = utcnow() - timedelta(seconds=get_settings().job_stale_after_s)
    report = SweepReport()
    _stale_jobs(session, cutoff, report)
    _stale_chunks(session, cutoff, report)
    _unclaimed_jobs(session, cutoff, report)
    _idle_chunked_jobs(session, cutoff, report)
    return report


def _has_chunks() -> Exists:
    return exists().where(JobChunk.job_id == Job.id)


def _stale_jobs(session: Session, cutoff: datetime, report: SweepReport) -> None:
    """Running jobs without chunks whose worker stopped beating."""
    max_attempts = get_settings().job_max_attempts
    stale = session.scalars(
        select(Job)
        .where(Job.state == JobState.RUNNING.value, Job.heartbeat_at < cutoff, ~_has_chunks())
        .with_for_update(key_share=True, skip_locked=True)
    ).all()
    for job in stale:
        if job.done > job.progress_mark:
            job.progress_mark = job.done
            job.attempts -= 1  # it got further: the worker died, not the work
        if job.attempts >= max_attempts:
            job.state = JobState.FAILED.value
            job.error = f"the worker stopped responding {job.attempts} times at the same point"
            job.finished_at = utcnow()
            report.failed_jobs.append(job.id)
            continue
        job.state = JobState.QUEUED.value
        send_job(session, job)
        report.requeued_jobs.append(job.id)


def _stale_chunks(session: Session, cutoff: datetime, report: SweepReport) -> None:
    """Running chunks of running jobs whose worker stopped beating."""
    stale = session.execute(
        select(JobChunk, Job.queue)
        .join(Job, Job.id == JobChunk.job_id)
        .where(
            Job.state == JobState.RUNNING.value,
            JobChunk.state == ChunkState.RUNNING.value,
            JobChunk.heartbeat_at < cutoff,
        )
        .with_for_update(of=JobChunk, key_share=True, skip_locked=True)
    ).all()
    now = utcnow()
    for chunk, queue in stale:
        if chunk.done > chunk.progress_mark:
            chunk.progress_mark = chunk.done
            chunk.attempts -= 1  # as for jobs: only an attempt that got nowhere new counts
        chunk.state = ChunkState.QUEUED.value
        chunk.done = 0
        chunk.sent_at = now
        on_commit(session, partial(enqueue_chunk, chunk.id, queue))
        report.requeued_chunks.append(chunk.id)


def _unclaimed_jobs(session: Session, cutoff: datetime, report: SweepReport) -> None:
    """Queued jobs whose message went out long ago and was never claimed."""
    waiting = session.scalars(
        select(Job)
        .where(
            Job.state == JobState.QUEUED.value,
            (Job.sent_at < cutoff) | (Job.sent_at.is_(None) & (Job.created_at < cutoff)),
        )
        .with_for_update(key_share=True, skip_locked=True)
    ).all()
    for job in waiting:
        send_job(session, job)
        report.resent_jobs.append(job.id)


def _idle_chunked_jobs(session: Session, cutoff: datetime, report: SweepReport) -> None:
    """Running chunked jobs that no worker works on: send their queued chunks again, or
    settle them when every chunk has ended."""
    busy = exists().where(
        JobChunk.job_id == Job.id,
        (JobChunk.state == ChunkState.RUNNING.value)
        | (JobChunk.sent_at >= cutoff)
        | (JobChunk.finished_at >= cutoff),
    )
    idle = session.execute(
        select(Job.id, Job.queue).where(
            Job.state == JobState.RUNNING.value, _has_chunks(), ~busy, Job.heartbeat_at < cutoff
        )
    ).all()
    now = utcnow()
    for job_id, queue in idle:
        queued = session.scalars(
            select(JobChunk)
            .where(JobChunk.job_id == job_id, JobChunk.state == ChunkState.QUEUED.value)
            .with_for_update(key_share=True, skip_locked=True)
        ).all()
        if not queued:
            on_commit(session, partial(_settle_later, job_id))
            report.settled_jobs.append(job_id)
        for chunk in queued:
            chunk.sent_at = now
            on_commit(session, partial(enqueue_chunk, chunk.id, queue))
            report.resent_chunks.append(chunk.id)


def _settle_later(job_id: int) -> None:
    settle_job(job_id)
