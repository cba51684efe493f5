"""The training API and pages: launching exactly once, roles, cancel and resume, stalled runs,
artifacts, and live pages that escape what they show."""

from __future__ import annotations

import re
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.models import Job, Snapshot, TrainingRun
from app.models.base import utcnow
from app.platform.jobs.dispatch import run_jobs_here
from app.training import layout, service
from app.training.presets import build_params
from tests.factories import make_token, make_user
from tests.training.conftest import make_snapshot
from tests.web.test_pages import csrf_from, sign_in

API = "/api/v1/training/runs"


@pytest.fixture
def snapshot(session: Session, records: list[dict[str, Any]], tmp_path: Path) -> Snapshot:
    """The real records, frozen."""
    return make_snapshot(session, records, tmp_path)


def _body(snapshot: Snapshot, base_model: Path, **extra: Any) -> dict[str, Any]:
    return {"snapshot_id": snapshot.id, "base_model": str(base_model), "preset": "lima",
            "template": "alpaca", "max_steps": 3, **extra}  # fmt: skip


def test_a_launch_retried_or_clicked_twice_is_one_run(
    client: TestClient, session: Session, snapshot: Snapshot, base_model: Path
) -> None:
    _, headers = make_token(session, "lead")
    keyed = headers | {"idempotency-key": "launch-1"}
    first = client.post(API, json=_body(snapshot, base_model), headers=keyed)
    assert first.status_code == 201, first.text
    run = first.json()
    assert run["state"] == "queued" and run["params"]["epochs"] == 15
    assert run["params"]["learning_rate"] == 1e-5 and run["params"]["max_steps"] == 3
    again = client.post(API, json=_body(snapshot, base_model), headers=keyed)
    assert again.status_code == 200 and again.json()["id"] == run["id"]
    # Without a key, the same snapshot, model and config is the same run; another seed is not.
    plain = client.post(API, json=_body(snapshot, base_model, seed=7), headers=headers)
    assert plain.status_code == 201
    assert (
        client.post(API, json=_body(snapshot, base_model, seed=7), headers=headers).json()["id"]
        == plain.json()["id"]
    )
    assert session.query(TrainingRun).count() == 2
    assert session.query(Job).filter(Job.kind == "train").count() == 2  # one job per run
    listed = client.get(API, headers=headers).json()
    assert [r["id"] for r in listed] == [plain.json()["id"], run["id"]]


def test_bad_launches_name_the_field_and_roles_hold(
    client: TestClient, session: Session, snapshot: Snapshot, base_model: Path, tmp_path: Path
) -> None:
    _, lead = make_token(session, "lead")
    _, annotator = make_token(session, "annotator")
    assert client.post(API, json=_body(snapshot, base_model), headers=annotator).status_code == 403
    missing = client.post(API, json=_body(snapshot, tmp_path / "nothing"), headers=lead)
    assert missing.status_code == 422 and "base_model" in missing.json()["error"]
    no_template = client.post(API, json=_body(snapshot, base_model, template="auto"), headers=lead)
    assert no_template.status_code == 422 and "no chat template" in no_template.json()["error"]
    bad = client.post(API, json=_body(snapshot, base_model, batch_size=0), headers=lead)
    assert bad.status_code == 422 and "batch_size" in bad.json()["error"]
    assert client.post(API, json={**_body(snapshot, base_model), "snapshot_id": 999999},
                       headers=lead).status_code == 404  # fmt: skip
    assert client.get(f"{API}/999999", headers=annotator).status_code == 404
    assert session.query(TrainingRun).count() == 0  # nothing half written


def test_cancel_resume_and_a_stalled_worker(
    client: TestClient, session: Session, snapshot: Snapshot, base_model: Path
) -> None:
    _, lead = make_token(session, "lead")
    _, annotator = make_token(session, "annotator")
    run = client.post(API, json=_body(snapshot, base_model), headers=lead).json()
    url = f"{API}/{run['id']}"
    assert client.post(f"{url}/cancel", headers=annotator).status_code == 403
    assert client.post(f"{url}/cancel", headers=lead).json()["state"] == "cancelled"
    assert client.post(f"{url}/cancel", headers=lead).status_code == 200  # twice is no error
    assert client.post(f"{url}/resume", headers=lead).json()["state"] == "queued"
    assert client.post(f"{url}/resume", headers=lead).status_code == 409  # queued already
    # The worker took the job and then went silent: the run is seen as stalled and resumes.
    job = session.get(Job, run["job_id"])
    assert job is not None
    job.state, job.heartbeat_at = "running", utcnow() - timedelta(hours=1)
    session.flush()
    got = client.get(url, headers=annotator).json()
    assert got["state"] == "stalled" and got["metrics"] == []
    assert client.post(f"{url}/resume", headers=lead).json()["state"] == "queued"
    assert session.get(Job, run["job_id"]).state == "queued"  # type: ignore[union-attr]


def test_a_long_runs_metrics_are_stored_at_once_and_twice_is_once(
    session: Session, snapshot: Snapshot, base_model: Path
) -> None:
    # More steps than one statement's 65,535 parameters hold at six columns a row.
    params = build_params("alpaca", template="alpaca")
    run_jobs_here(session)
    run, _ = service.create_run(session, snapshot.id, str(base_model), params)
    rows = [{"step": s, "loss": 1.0 / s, "learning_rate": 1e-5, "tokens_per_s": 9.0, "epoch": 1.0}
            for s in range(1, 11_001)]  # fmt: skip
    service.store_metrics(session, run.id, rows)
    service.store_metrics(session, run.id, [{**rows[-1], "loss": 0.5}])
    metrics = service.run_metrics(session, run)
    assert [m["step"] for m in metrics] == list(range(1, 11_001))
    assert metrics[0]["loss"] == 1.0 and metrics[-1]["loss"] == 0.5


def test_artifacts_are_listed_and_downloaded_by_leads_only(
    client: TestClient, session: Session, snapshot: Snapshot, base_model: Path
) -> None:
    _, lead = make_token(session, "lead")
    _, annotator = make_token(session, "annotator")
    run = client.post(API, json=_body(snapshot, base_model), headers=lead).json()
    url = f"{API}/{run['id']}/artifacts"
    assert client.get(url, headers=lead).json() == []
    final = layout.final_dir(layout.run_dir(run["id"]))
    final.mkdir(parents=True)
    (final / "sift_run.json").write_text('{"snapshot_id": 1}')
    (final.parent / "secret.txt").write_text("not an artifact")
    files = client.get(url, headers=lead).json()
    assert [f["path"] for f in files] == ["sift_run.json"]
    assert client.get(files[0]["url"], headers=lead).json() == {"snapshot_id": 1}
    assert client.get(url, headers=annotator).status_code == 403
    assert client.get(f"{url}/..%2Fsecret.txt", headers=lead).status_code == 404
    assert client.get(f"{url}/nothing.bin", headers=lead).status_code == 404


def test_pages_launch_once_per_form_and_show_a_run_live(
    client: TestClient, session: Session, snapshot: Snapshot, base_model: Path, tmp_path: Path
) -> None:
    annotator = make_user(session, "annotator")
    sign_in(client, annotator)
    first_page = client.get("/training")
    assert first_page.status_code == 200 and "New run" not in first_page.text
    client.post("/logout", data={"csrf_token": csrf_from(first_page.text)})
    lead = make_user(session, "lead")
    sign_in(client, lead)
    page = client.get("/training").text
    assert "New run" in page and 'src="/static/training.js"' in page
    nonce = re.search(r'name="nonce" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    # A folder whose name would be markup if it were not escaped.
    odd = tmp_path / "<i>odd"
    shutil.copytree(base_model, odd)
    form = {"csrf_token": csrf_from(page), "nonce": nonce, "snapshot_id": str(snapshot.id),
            "base_model": str(odd), "preset": "alpaca", "method": "lora", "template": "vicuna",
            "learning_rate": "3e-4", "max_steps": "5", "min_learning_rate": ""}  # fmt: skip
    # A value the form cannot read, and one the preset's schema refuses: the form again, naming
    # the field, and no run.
    unreadable = client.post("/training", data={**form, "learning_rate": "fast"})
    assert unreadable.status_code == 422 and "learning_rate: " in unreadable.text
    refused = client.post("/training", data={**form, "batch_size": "0"})
    assert refused.status_code == 422 and "batch_size: " in refused.text
    assert session.query(TrainingRun).count() == 0
    first = client.post("/training", data=form, follow_redirects=False)
    assert first.status_code == 303, first.text
    second = client.post("/training", data=form, follow_redirects=False)  # a double click
    assert second.headers["location"] == first.headers["location"]
    run = session.query(TrainingRun).one()
    assert run.params["learning_rate"] == 3e-4 and run.params["template"] == "vicuna"
    assert run.params["batch_size"] == 128  # the preset's value where the form left it
    assert client.post("/training", data={**form, "csrf_token": "x"}).status_code == 403
    service.store_metrics(session, run.id, [
        {"step": s, "loss": 3.0 / s, "learning_rate": 1e-4, "tokens_per_s": 1000.0, "epoch": 0.1}
        for s in range(1, 6)
    ])  # fmt: skip
    live = client.get(f"/training/{run.id}")
    assert live.status_code == 200
    assert "<polyline" in live.text and "&lt;i&gt;odd" in live.text
    assert "<i>odd" not in live.text
    assert "hx-get" in live.text  # queued: it keeps itself fresh
    fragment = client.get(f"/training/{run.id}", headers={"hx-request": "true"})
    assert fragment.text.lstrip().startswith("{#") or 'id="run"' in fragment.text[:200]
    assert client.get("/training/999999").status_code == 404
    cancelled = client.post(f"/training/{run.id}/cancel", data={"csrf_token": csrf_from(page)},
                            follow_redirects=False)  # fmt: skip
    assert cancelled.status_code == 303
    assert service.run_state(session, run) == "cancelled"


def test_a_reused_launch_key_is_the_callers_own_and_for_the_same_launch(
    client: TestClient, session: Session, snapshot: Snapshot, base_model: Path
) -> None:
    _, lead = make_token(session, "lead")
    _, other_lead = make_token(session, "lead")
    keyed = lead | {"idempotency-key": "launch-9"}
    first = client.post(API, json=_body(snapshot, base_model), headers=keyed)
    assert first.status_code == 201, first.text
    changed = client.post(API, json=_body(snapshot, base_model, max_steps=4), headers=keyed)
    assert changed.status_code == 422 and "different request" in changed.json()["error"]
    theirs = client.post(
        API,
        json=_body(snapshot, base_model, seed=11),
        headers=other_lead | {"idempotency-key": "launch-9"},
    )
    assert theirs.status_code == 201 and theirs.json()["id"] != first.json()["id"]
    too_long = client.post(API, json=_body(snapshot, Path("/tmp") / ("m" * 300)), headers=lead)
    assert too_long.status_code == 422  # past the file-name limit: no 500


def test_annotators_see_no_server_paths_or_logs_of_runs(
    client: TestClient, session: Session, snapshot: Snapshot, base_model: Path
) -> None:
    _, lead = make_token(session, "lead")
    _, annotator = make_token(session, "annotator")
    run = client.post(API, json=_body(snapshot, base_model), headers=lead).json()
    folder = layout.run_dir(run["id"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.log").write_text(f"loading {base_model}\n")
    url = f"{API}/{run['id']}"
    as_lead = client.get(url, headers=lead).json()
    assert as_lead["base_model"] == str(base_model) and as_lead["output_dir"]
    seen = client.get(url, headers=annotator).json()
    assert seen["base_model"] == base_model.name
    assert seen["output_dir"] is None and seen["logs"] is None
    listed = client.get(API, headers=annotator).json()
    assert str(base_model) not in str(listed) and str(folder) not in str(listed)
    sign_in(client, make_user(session, "annotator"))
    page = client.get(f"/training/{run['id']}").text
    assert str(base_model) not in page and str(folder) not in page
    assert "The log is shown to leads." in page
