"""The jobs page: who sees it, progress bars that move with each poll and carry no inline
style, and the table that stops polling once nothing can move."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.models import Job, JobState
from tests.factories import make_dataset, make_user
from tests.web.test_pages import HOSTILE, sign_in


def make_job(session: Session, **fields: object) -> Job:
    values: dict[str, object] = {"kind": "score", "queue": "io", "params": {}, "counts": {}}
    job = Job(**(values | fields))
    session.add(job)
    session.flush()
    return job


def test_every_signed_in_role_sees_the_jobs_page(client: TestClient, session: Session) -> None:
    assert client.get("/jobs", follow_redirects=False).status_code == 303  # to sign in
    for role in ("annotator", "lead", "admin"):
        client.cookies.clear()
        sign_in(client, make_user(session, role))
        assert client.get("/jobs").status_code == 200


def test_progress_moves_with_each_poll_without_inline_styles(
    client: TestClient, session: Session
) -> None:
    dataset = make_dataset(session)
    job = make_job(
        session, state=JobState.RUNNING.value, done=250, total=1000, dataset_id=dataset.id
    )
    sign_in(client, make_user(session, "annotator"))
    first = client.get("/jobs", headers={"hx-request": "true"}).text
    assert '<progress value="250" max="1000">' in first and "250 / 1,000" in first
    assert 'hx-trigger="every 1s"' in first
    assert " style=" not in first and "<style" not in first
    job.done, job.counts = 600, {"sent": 600, "cost": 0.25}
    session.flush()
    second = client.get("/jobs", headers={"hx-request": "true"}).text
    assert '<progress value="600" max="1000">' in second and "$0.2500" in second
    assert f'href="/datasets/{dataset.name}"' in second
    job.state, job.done = JobState.SUCCEEDED.value, 1000
    session.flush()
    last = client.get("/jobs", headers={"hx-request": "true"}).text
    assert '<progress value="1000" max="1000">' in last and "every 1s" not in last


def test_a_running_job_says_how_long_it_has_left_and_a_queued_one_what_it_waits_behind(
    client: TestClient, session: Session
) -> None:
    from datetime import timedelta

    from app.models.base import utcnow

    running = make_job(
        session, state=JobState.RUNNING.value, done=250, total=1000, queue="cpu",
        started_at=utcnow() - timedelta(seconds=100),
    )  # fmt: skip
    waiting = make_job(session, state=JobState.QUEUED.value, queue="cpu")
    alone = make_job(session, state=JobState.QUEUED.value, queue="gpu")
    sign_in(client, make_user(session, "annotator"))
    page = client.get("/jobs").text
    assert "about 5 min left" in page  # 250 of 1,000 in 100 s: 300 s to go
    assert f"waiting behind job {running.id}" in page
    assert "waiting for a worker" in page
    assert waiting.id != alone.id


def test_an_import_counts_megabytes_and_an_unpriced_job_shows_no_cost(
    client: TestClient, session: Session
) -> None:
    make_job(session, kind="import", queue="cpu", state=JobState.RUNNING.value,
             done=3 * 1048576, total=12 * 1048576)  # fmt: skip
    make_job(session, state=JobState.SUCCEEDED.value, done=5, total=5,
             counts={"sent": 5, "cost": 0.0})  # fmt: skip
    sign_in(client, make_user(session, "annotator"))
    page = client.get("/jobs").text
    assert "3.0 / 12.0 MB" in page
    assert "sent <b>5</b>" in page and "$0.0000" not in page


def test_a_running_job_without_a_total_shows_a_moving_bar(
    client: TestClient, session: Session
) -> None:
    make_job(session, state=JobState.RUNNING.value, done=42)
    sign_in(client, make_user(session, "annotator"))
    page = client.get("/jobs").text
    assert '<progress max="1">working</progress>' in page
    assert " style=" not in page


def test_job_errors_are_escaped(client: TestClient, session: Session) -> None:
    make_job(session, state=JobState.FAILED.value, error=HOSTILE, counts={HOSTILE: 1})
    sign_in(client, make_user(session, "lead"))
    page = client.get("/jobs").text
    assert "<script>window" not in page
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt; {{7*7}}" in page
    assert "Resume" in page  # a failed job can be queued again by a lead


def test_unknown_jobs_answer_404(client: TestClient, session: Session) -> None:
    token = sign_in(client, make_user(session, "lead"))
    headers = {"x-csrf-token": token}
    assert client.post("/jobs/999999999/cancel", headers=headers).status_code == 404
    assert client.post("/jobs/999999999/resume", headers=headers).status_code == 404


def test_annotators_see_job_errors_without_server_paths(
    client: TestClient, session: Session
) -> None:
    error = "no model folder at /srv/models/secret-llama"
    make_job(session, state=JobState.FAILED.value, error=error)
    sign_in(client, make_user(session, "annotator"))
    page = client.get("/jobs").text
    assert "no model folder at (hidden)" in page and "/srv/models" not in page
    client.cookies.clear()
    sign_in(client, make_user(session, "lead"))
    assert error in client.get("/jobs").text
