"""The Batch API choice where a lead starts a job: the dataset page's Score form, the generation
form (its estimate at the batch price) and the evaluation form each start a job that runs as
batches; a scorer that calls no endpoint refuses it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.evaluation.service import import_test_set_records
from app.models import Job
from tests.endpoints import configure_endpoint
from tests.factories import make_dataset, make_example, make_user
from tests.web.test_pages import sign_in


@pytest.fixture(autouse=True)
def endpoints(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Priced endpoints (nothing is sent to them here)."""
    for name in ("default", "alpha", "judge"):
        configure_endpoint(monkeypatch, name, base_url="http://127.0.0.1:9/v1",
                           model=f"{name}-model", price_in=0.01, price_out=0.02)  # fmt: skip
    yield


def _started(session: Session, kind: str) -> Job:
    job = session.scalar(select(Job).where(Job.kind == kind).order_by(Job.id.desc()))
    assert job is not None
    return job


def test_each_start_form_can_run_its_job_as_batches(client: TestClient, session: Session) -> None:
    pool = make_dataset(session)
    for i in range(3):
        make_example(session, pool, i, {"instruction": f"Explain idea number {i} simply."})
    token = sign_in(client, make_user(session, "lead"))
    page = client.get(f"/datasets/{pool.name}").text
    assert 'name="batch" value="true"' in page

    score = {"scorer": "alpagasus", "batch": "true", "csrf_token": token}
    started = client.post(f"/datasets/{pool.name}/score", data=score, follow_redirects=False)
    assert started.status_code == 303 and _started(session, "score").params["batch"] is True
    lima = score | {"scorer": "lima"}
    refused = client.post(f"/datasets/{pool.name}/score", data=lima, follow_redirects=False)
    assert refused.status_code == 422 and "calls no LLM endpoint" in refused.text

    asked = {"method": "evol-quality", "rounds": "2", "endpoint": "default"}
    live = client.get(f"/datasets/{pool.name}/generate/estimate", params=asked).text
    batched = client.get(
        f"/datasets/{pool.name}/generate/estimate", params=asked | {"batch": "true"}
    ).text
    assert "as Batch API batches" in batched and "as Batch API batches" not in live
    form = asked | {"into": "grown", "batch": "true", "csrf_token": token}
    assert client.post(f"/datasets/{pool.name}/generate", data=form).status_code == 200
    assert _started(session, "generate").params["batch"] is True

    import_test_set_records(session, "qs", [{"prompt": "Say hello."}])
    form = {"model_a": "alpha", "model_b": "endpoint:alpha", "test_set": "qs", "judge": "judge"}
    answer = client.post("/evaluations", data=form | {"batch": "true", "csrf_token": token},
                         follow_redirects=False)  # fmt: skip
    assert answer.status_code == 303 and _started(session, "evaluate").params["batch"] is True
