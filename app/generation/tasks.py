"""Job handler of the generation domain."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.generation.runs import run_generation
from app.generation.spec import GENERATE_KIND
from app.models import Job
from app.platform.jobs.progress import Progress
from app.platform.jobs.registry import job_handler


@job_handler(GENERATE_KIND, queue="io")
def generate(session: Session, job: Job, progress: Progress) -> dict[str, Any]:
    """Grow or evolve examples into the job's dataset, in the job's one transaction."""
    return run_generation(session, job, progress)
