"""Job handlers of the training domain."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.models import Job, TrainingRun
from app.platform.errors import NotFound
from app.platform.jobs.progress import Progress
from app.platform.jobs.registry import job_handler
from app.training.service import JOB_KIND, execute_run


@job_handler(JOB_KIND, queue="gpu")
def run_training(session: Session, job: Job, progress: Progress) -> dict[str, Any]:
    """Train a run from its last checkpoint to its final artifact."""
    run = session.get(TrainingRun, job.params["run_id"])
    if run is None:
        raise NotFound(f"the training run of job {job.id} no longer exists")
    return execute_run(session, run, progress)
