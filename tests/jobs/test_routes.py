"""The jobs JSON API: list, get, cancel."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.models import Job
from app.platform.jobs.dispatch import create_job, run_jobs_here
from tests.factories import make_dataset, make_token


def queued_job(session: Session) -> Job:
    dataset = make_dataset(session)
    run_jobs_here(session)
    return create_job(
        session, "import", {"path": "/nowhere.json"}, queue="cpu", dataset_id=dataset.id
    )


def test_get_job(client: TestClient, session: Session) -> None:
    _, headers = make_token(session, "annotator")
    job = queued_job(session)
    response = client.get(f"/api/v1/jobs/{job.id}", headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["kind"], body["queue"], body["state"]) == (
        job.id,
        "import",
        "cpu",
        "queued",
    )
    assert (body["done"], body["total"], body["counts"], body["error"]) == (0, None, {}, None)
    assert body["params"] == {"path": "(hidden)"}  # an annotator sees no server paths


def test_annotators_see_no_server_paths_in_jobs(client: TestClient, session: Session) -> None:
    _, annotator = make_token(session, "annotator")
    _, lead = make_token(session, "lead")
    dataset = make_dataset(session)
    run_jobs_here(session)
    params = {"model": "/srv/models/secret-llama", "scorer": "lima@1", "output_dir": "runs/7"}
    job = create_job(session, "score", params, queue="cpu", dataset_id=dataset.id)
    job.error = "no model at /srv/models/secret-llama/config.json (see https://x.org/a/b)"
    session.flush()
    seen = client.get(f"/api/v1/jobs/{job.id}", headers=annotator).json()
    assert seen["params"] == {"model": "(hidden)", "scorer": "lima@1", "output_dir": "(hidden)"}
    assert seen["error"] == "no model at (hidden) (see https://x.org/a/b)"
    listed = client.get("/api/v1/jobs", headers=annotator).json()
    assert "/srv/models" not in str(listed)
    assert client.get(f"/api/v1/jobs/{job.id}", headers=lead).json()["params"] == params


def test_unknown_job_is_404(client: TestClient, session: Session) -> None:
    _, headers = make_token(session, "annotator")
    response = client.get("/api/v1/jobs/987654321", headers=headers)
    assert response.status_code == 404
    assert "no job 987654321" in response.json()["error"]


def test_jobs_need_a_token(client: TestClient, session: Session) -> None:
    job = queued_job(session)
    assert client.get("/api/v1/jobs").status_code == 401
    assert client.get(f"/api/v1/jobs/{job.id}").status_code == 401


def test_list_jobs_newest_first_and_active_only(client: TestClient, session: Session) -> None:
    _, headers = make_token(session, "annotator")
    older, newer = queued_job(session), queued_job(session)
    newer.state = "succeeded"
    session.flush()
    listed = [j["id"] for j in client.get("/api/v1/jobs", headers=headers).json()]
    assert listed.index(newer.id) < listed.index(older.id)
    active = [
        j["id"] for j in client.get("/api/v1/jobs", params={"active": True}, headers=headers).json()
    ]
    assert older.id in active and newer.id not in active


def test_cancel_job(client: TestClient, session: Session) -> None:
    _, annotator = make_token(session, "annotator")
    _, lead = make_token(session, "lead")
    job = queued_job(session)
    url = f"/api/v1/jobs/{job.id}/cancel"
    assert client.post(url, headers=annotator).status_code == 403
    response = client.post(url, headers=lead)
    assert response.status_code == 200
    assert response.json()["state"] == "cancelled"
    assert response.json()["finished_at"] is not None
    # Cancelling twice is not an error; cancelling a finished job is.
    again = client.post(url, headers=lead)
    assert again.status_code == 200 and again.json()["state"] == "cancelled"
    finished = queued_job(session)
    finished.state = "succeeded"
    session.flush()
    refused = client.post(f"/api/v1/jobs/{finished.id}/cancel", headers=lead)
    assert refused.status_code == 409
    assert refused.json()["state"] == "succeeded"
    assert client.post("/api/v1/jobs/987654321/cancel", headers=lead).status_code == 404
