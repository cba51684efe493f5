"""The jobs page: recent background jobs with live progress; cancelling and resuming them."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from app.jobs import service
from app.models import Dataset, JobState, Role, User
from app.platform.db import DB
from app.platform.jobs.schemas import shown_jobs
from app.platform.llm.batch_status import batch_lines
from app.platform.validation import Id
from app.platform.web import PageLead, PageUser, act, check_csrf, render

# Every state-changing request to these pages must carry the session's CSRF token.
router = APIRouter(dependencies=[Depends(check_csrf)], include_in_schema=False)
ACTIVE = frozenset({JobState.QUEUED.value, JobState.RUNNING.value})


def _jobs_page(
    request: Request, session: Session, user: User, notice: str | None = None
) -> HTMLResponse:
    jobs = service.list_jobs(session)
    dataset_ids = {j.dataset_id for j in jobs if j.dataset_id is not None}
    datasets = {i: d.name for i in dataset_ids if (d := session.get(Dataset, i)) is not None}
    context = {
        "user": user,
        "section": "jobs",
        "jobs": shown_jobs(jobs, user),
        "outlook": service.outlook(session, jobs),
        "batches": batch_lines(session, [job.id for job in jobs]),
        "datasets": datasets,
        # The table polls for fresh progress only while something can still move.
        "polling": any(j.state in ACTIVE for j in jobs),
        "can_cancel": user.has_role(Role.LEAD),
        "notice": notice,
    }
    return render(request, "jobs/list.html", context, fragment="jobs/_table.html")


@router.get("/jobs")
def jobs_page(request: Request, session: DB, user: PageUser) -> HTMLResponse:
    """The newest jobs with their progress; htmx gets only the table."""
    return _jobs_page(request, session, user)


@router.post("/jobs/{job_id}/cancel", response_model=None)
def cancel(request: Request, job_id: Id, session: DB, user: PageLead) -> Response:
    """Cancel a job that has not finished; htmx gets the refreshed table."""
    return act(
        request,
        lambda: service.cancel_job(session, job_id),
        lambda notice: _jobs_page(request, session, user, notice),
        "/jobs",
    )


@router.post("/jobs/{job_id}/resume", response_model=None)
def resume(request: Request, job_id: Id, session: DB, user: PageLead) -> Response:
    """Queue a paused or failed job again; htmx gets the refreshed table."""
    return act(
        request,
        lambda: service.resume_job(session, job_id),
        lambda notice: _jobs_page(request, session, user, notice),
        "/jobs",
    )
