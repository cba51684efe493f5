"""Job handlers of the datasets domain."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from app.datasets.importer import import_file
from app.datasets.removal import DELETE_KIND, delete_in_batches
from app.datasets.search_index import (
    SEARCH_INDEX_KIND,
    fill_search_chunk,
    plan_search_chunks,
)
from app.models import Dataset, Job, JobState
from app.platform.config import get_settings
from app.platform.db import on_commit
from app.platform.errors import NotFound
from app.platform.jobs.progress import JobCancelled, Progress, job_state
from app.platform.jobs.registry import chunked_job, job_handler


@job_handler("import", queue="cpu")
def run_import(session: Session, job: Job, progress: Progress) -> dict[str, Any]:
    """Import the job's file; progress is bytes read of the file."""
    dataset = session.get(Dataset, job.dataset_id)
    if dataset is None:
        raise NotFound(f"the dataset of job {job.id} no longer exists")
    params = job.params
    path = Path(params["path"])
    try:
        summary = import_file(
            session,
            dataset,
            path,
            fmt=params.get("format", "auto"),
            source=params.get("source"),
            skip_invalid=params.get("skip_invalid", False),
            mapping=params.get("mapping") or {},
            max_record_chars=get_settings().import_max_record_chars,
            split=params.get("split"),
            progress=lambda _records, done, total: progress(done, total),
        )
    except JobCancelled:
        # Cancelled by a person, the import is over; taken back by the sweeper, it runs again.
        if job_state(job.id) == JobState.CANCELLED.value:
            forget_upload(path)
        raise
    except Exception:
        forget_upload(path)  # the job fails for good: its error says why, the file is not needed
        raise
    on_commit(session, lambda: forget_upload(path))
    return summary.counts()


def forget_upload(path: Path) -> None:
    """Delete an uploaded file once its import is over; files named on the server's own disk
    (`sift import PATH`) are never touched."""
    if path.resolve().is_relative_to(get_settings().uploads_dir):
        path.unlink(missing_ok=True)


@job_handler(DELETE_KIND, queue="cpu")
def run_delete(session: Session, job: Job, progress: Progress) -> dict[str, Any]:
    """Delete a large dataset's examples, then the dataset (renamed out of the way already)."""
    deleted = delete_in_batches(session, job.params["dataset_id"], progress)
    return {"deleted": deleted, "dataset": job.params["name"]}


@chunked_job(SEARCH_INDEX_KIND, queue="cpu")
class IndexForSearch:
    """Fills the full-text column that a large import left empty, an id range per task."""

    def plan(self, session: Session, job: Job) -> tuple[int, list[dict[str, Any]]]:
        """Id ranges of the dataset's examples without a full-text column."""
        assert job.dataset_id is not None
        return plan_search_chunks(session, job.dataset_id)

    def run_chunk(
        self, session: Session, job: Job, params: dict[str, Any], progress: Progress
    ) -> dict[str, Any]:
        """Fill one range."""
        return fill_search_chunk(session, job, params, progress)
