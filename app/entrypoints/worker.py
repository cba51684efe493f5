"""The Celery worker: thin tasks that hand a job or chunk id to the job runtime.

`celery -A app.entrypoints.worker:celery_app worker` loads this module; `sift worker` builds
that command line (app.entrypoints.processes).
"""

from __future__ import annotations

import structlog

from app.entrypoints.domains import load_every_job_kind
from app.platform.db import transaction
from app.platform.jobs.broker import get_celery
from app.platform.jobs.chunked import execute_chunk
from app.platform.jobs.runner import execute_job
from app.platform.jobs.sweeper import sweep

load_every_job_kind()
celery_app = get_celery()
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
