"""Job handlers of the review domain."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.models import Dataset, Job, User
from app.platform.errors import NotFound
from app.platform.jobs.progress import Progress
from app.platform.jobs.registry import job_handler
from app.review.bulk import BULK_KIND, BulkAction, apply


@job_handler(BULK_KIND, queue="cpu")
def run_bulk(session: Session, job: Job, progress: Progress) -> dict[str, Any]:
    """One action on every matching example of the job's dataset (or collection), in the job's
    transaction."""
    # No dataset: an action on a collection's examples, across its datasets.
    dataset = session.get(Dataset, job.dataset_id) if job.dataset_id is not None else None
    user = session.get(User, job.created_by_id) if job.created_by_id else None
    if (job.dataset_id is not None and dataset is None) or user is None:
        raise NotFound(f"the dataset or the person of job {job.id} no longer exists")
    counts = apply(session, user, dataset, BulkAction(**job.params))
    progress(counts["matched"], counts["matched"], force=True)
    return counts
