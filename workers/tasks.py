"""Celery tasks: thin wrappers that hand a job id to the runner."""

from __future__ import annotations

from app.core.db import transaction
from app.jobs.chunks import execute_chunk, sweep_stale_chunks
from app.jobs.registry import load_handlers
from app.jobs.runner import execute_job
from app.jobs.service import sweep_stale_jobs
from workers.celery_app import celery_app

load_handlers()


@celery_app.task(name="sift.run_job")
def run_job(job_id: int) -> str:
    """Run one job; safe to deliver twice (a finished job is skipped)."""
    return execute_job(job_id)


@celery_app.task(name="sift.run_chunk")
def run_chunk(chunk_id: int) -> str:
    """Run one chunk of a chunked job; safe to deliver twice (a taken chunk is skipped)."""
    return execute_chunk(chunk_id)


@celery_app.task(name="sift.sweep_stale_jobs")
def sweep() -> list[int]:
    """Re-queue jobs and chunks whose worker died."""
    with transaction() as session:
        return sweep_stale_jobs(session) + sweep_stale_chunks(session)
