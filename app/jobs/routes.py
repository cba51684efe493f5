"""JSON API for jobs."""

from __future__ import annotations

from fastapi import APIRouter

from app.jobs import service
from app.jobs.schemas import ResumeIn
from app.platform.db import DB
from app.platform.jobs.schemas import JobOut
from app.platform.llm.batch_status import job_batches
from app.platform.security import ApiAnnotator, ApiLead
from app.platform.validation import Id

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])


@router.get("", response_model=list[JobOut])
def list_jobs(session: DB, user: ApiAnnotator, active: bool = False) -> list[JobOut]:
    """The newest jobs first (without server paths for annotators)."""
    return [JobOut.shown_to(j, user) for j in service.list_jobs(session, active_only=active)]


@router.get("/{job_id}", response_model=JobOut)
def get_job(job_id: Id, session: DB, user: ApiAnnotator) -> JobOut:
    """One job with its progress and counts (without server paths for annotators), and the
    state of its Batch API batches, if it ran as batches."""
    shown = JobOut.shown_to(service.get_job(session, job_id), user)
    views = job_batches(session, [job_id]).get(job_id, [])
    return shown.model_copy(update={"batches": [view.as_dict() for view in views]})


@router.post("/{job_id}/cancel", response_model=JobOut)
def cancel_job(job_id: Id, _: ApiLead, session: DB) -> JobOut:
    """Cancel a job that has not finished."""
    return JobOut.model_validate(service.cancel_job(session, job_id))


@router.post("/{job_id}/resume", response_model=JobOut)
def resume_job(job_id: Id, _: ApiLead, session: DB, body: ResumeIn | None = None) -> JobOut:
    """Queue a paused or failed job again, optionally with a larger budget."""
    budget = body.budget_usd if body else None
    return JobOut.model_validate(service.resume_job(session, job_id, budget_usd=budget))
