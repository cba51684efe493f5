"""Job handlers of the collections domain."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.models import Collection, Job, User
from app.platform.errors import NotFound
from app.platform.jobs.progress import Progress
from app.platform.jobs.registry import job_handler
from app.selection.service import SelectionSpec, select_into


@job_handler("select", queue="cpu")
def run_select(session: Session, job: Job, progress: Progress) -> dict[str, Any]:
    """Run a selection recipe into a collection."""
    collection = session.get(Collection, job.params["collection_id"])
    if collection is None:
        raise NotFound(f"the collection of job {job.id} no longer exists")
    user = session.get(User, job.created_by_id) if job.created_by_id else None
    spec = SelectionSpec(**job.params["spec"])
    counts = select_into(
        session, collection, spec, name=job.params.get("name"), user=user, progress=progress
    )
    progress(counts["selected"], counts["selected"], force=True)
    return counts
