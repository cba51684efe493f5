"""Job handlers of the datasets domain."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from app.datasets.importer import import_file
from app.models import Dataset, Job
from app.platform.config import get_settings
from app.platform.errors import NotFound
from app.platform.jobs.progress import Progress
from app.platform.jobs.registry import job_handler


@job_handler("import", queue="cpu")
def run_import(session: Session, job: Job, progress: Progress) -> dict[str, Any]:
    """Import the job's file; progress is bytes read of the file."""
    dataset = session.get(Dataset, job.dataset_id)
    if dataset is None:
        raise NotFound(f"the dataset of job {job.id} no longer exists")
    params = job.params
    summary = import_file(
        session,
        dataset,
        Path(params["path"]),
        fmt=params.get("format", "auto"),
        source=params.get("source"),
        skip_invalid=params.get("skip_invalid", False),
        mapping=params.get("mapping") or {},
        max_record_chars=get_settings().import_max_record_chars,
        progress=lambda _records, done, total: progress(done, total),
    )
    return summary.counts()
