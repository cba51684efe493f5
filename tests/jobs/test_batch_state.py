"""A job that runs as Batch API batches shows how they stand: on /jobs, in the API, in
`sift jobs show`."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.models import Job, JobState, LLMBatch
from tests.factories import make_token, make_user
from tests.jobs.test_pages import make_job
from tests.web.test_pages import sign_in


def _batch(session: Session, job: Job, status: str, counts: tuple[int, int, int]) -> LLMBatch:
    total, completed, failed = counts
    row = LLMBatch(
        job_id=job.id,
        endpoint="default",
        model="m",
        marker=f"marker-{job.id}-{status}",
        status=status,
        batch_id=f"batch_{status}",
        requests={f"h{i}": {} for i in range(total)},
        request_counts={"total": total, "completed": completed, "failed": failed},
        failures={},
        reserved_usd=0.5,
        cost_usd=0.0,
    )
    session.add(row)
    session.flush()
    return row


def test_the_jobs_page_and_the_api_show_the_batch_state(
    client: TestClient, session: Session
) -> None:
    job = make_job(session, state=JobState.RUNNING.value, params={"batch": True}, total=130)
    _batch(session, job, "in_progress", (100, 40, 2))
    _batch(session, job, "validating", (30, 0, 0))
    sign_in(client, make_user(session, "annotator"))
    page = client.get("/jobs", headers={"hx-request": "true"}).text
    line = "Batch API: 2 batches (1 in_progress, 1 validating), 40 of 130 requests answered"
    assert f"{line}, 2 failed" in page
    _, headers = make_token(session, "lead")
    body = client.get(f"/api/v1/jobs/{job.id}", headers=headers).json()
    assert [(b["status"], b["total"], b["completed"], b["failed"]) for b in body["batches"]] == [
        ("in_progress", 100, 40, 2),
        ("validating", 30, 0, 0),
    ]
    assert client.get("/api/v1/jobs", headers=headers).json()[0]["batches"] == []
    # A plain job waiting on its batch is queued: it says what it waits for.
    waiting = make_job(session, state=JobState.QUEUED.value, params={"batch": True})
    _batch(session, waiting, "finalizing", (5, 5, 0))
    assert "waiting for its Batch API batch" in client.get("/jobs").text
