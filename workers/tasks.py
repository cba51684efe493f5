"""Celery tasks: thin wrappers that hand a job id to the runner."""

from __future__ import annotations

import structlog

from app.core.db import transaction
from app.jobs.chunks import execute_chunk
from app.jobs.registry import load_handlers
from app.jobs.runner import execute_job
from app.jobs.sweeper import sweep
from workers.celery_app import celery_app

load_handlers()
log = structlog.get_logger(__name__)


@celery_app.task(name="sift.run_job")
def run_job(job_id: int) -> str:
    """Run one job; safe to deliver twice (only a queued job is claimed)."""
    return execute_job(job_id)


@celery_app.task(name="sift.run_chunk")
def run_chunk(chunk_id: int) -> str:
    """Run one chunk of a chunked job; safe to deliver twice (a taken chunk is skipped)."""
    return execute_chunk(chunk_id)


@celery_app.task(name="sift.sweep_stale_jobs")
def sweep_jobs() -> None:
    """Recover jobs and chunks that dead workers or lost messages left behind."""
    with transaction() as session:
        report = sweep(session)
    if report:
        log.info("jobs.swept", **vars(report))
