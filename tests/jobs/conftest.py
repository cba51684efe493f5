"""Job tests use the `committed` fixture of tests/conftest.py; helpers that read what it holds."""

from __future__ import annotations

from sqlalchemy import func, select

from app.models import Example, Job
from app.platform.db import transaction


def committed_job(job_id: int) -> Job:
    """The job as committed, detached from its session."""
    with transaction() as session:
        job = session.get(Job, job_id)
        assert job is not None
        session.expunge(job)
        return job


def example_count() -> int:
    """How many examples are committed, in every dataset."""
    with transaction() as session:
        return session.scalar(select(func.count()).select_from(Example)) or 0
