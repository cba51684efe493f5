"""The evaluation API: test sets and evaluations, roles, unknown ids, items."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.models import Job
from app.platform.config import get_settings
from tests.evaluation.helpers import configure_endpoints, judged_run
from tests.factories import make_dataset, make_example, make_token

WIN = {"verdict_ab": "a", "verdict_ba": "a", "verdict": "win", "state": "ok"}
LOSE = {"verdict_ab": "b", "verdict_ba": "tie", "verdict": "lose", "state": "ok"}
BROKEN = {"verdict_ab": "error", "verdict_ba": "a", "verdict": "error", "state": "parse_error"}


@pytest.fixture(autouse=True)
def endpoints(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    configure_endpoints(monkeypatch)
    yield
    get_settings.cache_clear()


def test_a_lead_imports_test_sets_and_everyone_reads_them(
    client: TestClient, session: Session, data_dir: Path
) -> None:
    _, lead = make_token(session, "lead")
    _, annotator = make_token(session, "annotator")
    lines = (data_dir / "mt_bench/question.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    body = {"name": "mt-bench", "records": records}
    assert client.post("/api/v1/test-sets", json=body, headers=annotator).status_code == 403
    created = client.post("/api/v1/test-sets", json=body, headers=lead)
    assert created.status_code == 201, created.text
    assert created.json() | {"digest": "", "created_at": ""} == {
        "name": "mt-bench",
        "format": "mt-bench",
        "source": "api",
        "prompt_count": 80,
        "max_turns": 2,
        "digest": "",
        "created_at": "",
    }
    assert client.post("/api/v1/test-sets", json=body, headers=lead).status_code == 200
    detail = client.get("/api/v1/test-sets/mt-bench", headers=annotator).json()
    assert len(detail["prompts"]) == 80 and detail["prompts"][0]["prompt_id"] == "81"
    assert [t["name"] for t in client.get("/api/v1/test-sets", headers=annotator).json()] == [
        "mt-bench"
    ]
    assert client.get("/api/v1/test-sets/nope", headers=annotator).status_code == 404


def test_bad_test_sets_are_refused_with_the_record_named(
    client: TestClient, session: Session
) -> None:
    _, lead = make_token(session, "lead")
    body = {"name": "bad", "records": [{"prompt": "fine"}, {"prompt": ""}]}
    response = client.post("/api/v1/test-sets", json=body, headers=lead)
    assert response.status_code == 422
    assert "record 2: field 'prompt' must be a non-empty string" in response.json()["error"]
    dataset = make_dataset(session)
    make_example(session, dataset, 1)
    from_dataset = {"name": "pool", "dataset": dataset.name}
    assert client.post("/api/v1/test-sets", json=from_dataset, headers=lead).status_code == 201
    neither = client.post("/api/v1/test-sets", json={"name": "x"}, headers=lead)
    assert neither.status_code == 422


def test_a_lead_starts_an_evaluation(client: TestClient, session: Session) -> None:
    _, lead = make_token(session, "lead")
    _, annotator = make_token(session, "annotator")
    records = [{"prompt": "Why?"}, {"prompt": "How?"}]
    client.post("/api/v1/test-sets", json={"name": "tiny", "records": records}, headers=lead)
    body = {"model_a": "endpoint:alpha", "model_b": "beta", "test_set": "tiny", "judge": "judge"}
    assert client.post("/api/v1/evaluations", json=body, headers=annotator).status_code == 403
    started = client.post(
        "/api/v1/evaluations", json=body, headers=lead | {"idempotency-key": "eval-1"}
    )
    assert started.status_code == 202, started.text
    shown = started.json()
    assert shown["state"] == "queued" and shown["total"] == 2
    assert (shown["model_a"], shown["model_b"], shown["judge_prompt"]) == (
        "endpoint:alpha",
        "endpoint:beta",
        "alpagasus",
    )
    again = client.post(
        "/api/v1/evaluations", json=body, headers=lead | {"idempotency-key": "eval-1"}
    )
    assert again.json()["id"] == shown["id"]
    job = session.get(Job, shown["job_id"])
    assert job is not None and (job.kind, job.queue, job.params["run_id"]) == (
        "evaluate",
        "io",
        shown["id"],
    )
    listed = client.get("/api/v1/evaluations", headers=annotator).json()
    assert [e["id"] for e in listed] == [shown["id"]]


REFUSALS = [
    ({"test_set": "nope"}, 404, "no test set"),
    ({"judge": "nobody"}, 422, "no LLM endpoint named 'nobody'"),
    ({"model_a": "run:12345"}, 404, "no training run 12345"),
    ({"model_b": "cloud:x"}, 422, "is not run:ID"),
    ({"judge_prompt": "koala"}, 422, "judge_prompt"),
    ({"budget_usd": 1.0}, 422, "a budget needs token prices"),
    ({"max_tokens": 0}, 422, "max_tokens"),
]


def test_evaluations_that_cannot_run_are_refused(client: TestClient, session: Session) -> None:
    _, lead = make_token(session, "lead")
    client.post("/api/v1/test-sets", json={"name": "t", "records": [{"prompt": "?"}]}, headers=lead)
    for change, status, message in REFUSALS:
        body = {"model_a": "alpha", "model_b": "beta", "test_set": "t", "judge": "judge"} | change
        response = client.post("/api/v1/evaluations", json=body, headers=lead)
        assert response.status_code == status, change
        assert message in response.text, change
    assert client.get("/api/v1/evaluations", headers=lead).json() == []


def test_results_items_and_unknown_ids(client: TestClient, session: Session) -> None:
    _, annotator = make_token(session, "annotator")
    run = judged_run(
        session,
        "three",
        [{"prompt": "a?"} | WIN, {"prompt": "b?"} | LOSE, {"prompt": "c?"} | BROKEN],
    )
    other = judged_run(session, "other", [{"prompt": "d?"} | WIN])
    shown = client.get(f"/api/v1/evaluations/{run.id}", headers=annotator).json()
    assert (shown["wins"], shown["ties"], shown["losses"], shown["errors"]) == (1, 0, 1, 1)
    assert shown["winning_score"] == 1.0  # (1 - 1) / 2 + 1: the error is not a tie
    items = client.get(f"/api/v1/evaluations/{run.id}/items", headers=annotator).json()
    assert [i["verdict"] for i in items] == ["win", "lose", "error"]
    assert items[2]["state"] == "parse_error"
    losses = client.get(f"/api/v1/evaluations/{run.id}/items?verdict=lose", headers=annotator)
    assert [i["prompt_id"] for i in losses.json()] == ["p1"]
    one = client.get(f"/api/v1/evaluations/{run.id}/items/{items[0]['id']}", headers=annotator)
    assert one.json()["judge_ab"] == "8 3\nA is better."
    other_item = client.get(f"/api/v1/evaluations/{other.id}/items", headers=annotator).json()[0]
    assert (
        client.get(
            f"/api/v1/evaluations/{run.id}/items/{other_item['id']}", headers=annotator
        ).status_code
        == 404
    )
    assert client.get("/api/v1/evaluations/999999", headers=annotator).status_code == 404
    assert client.get("/api/v1/evaluations").status_code == 401


def test_retrying_waits_for_the_end(client: TestClient, session: Session) -> None:
    _, lead = make_token(session, "lead")
    run = judged_run(session, "busy", [{"prompt": "a?"} | WIN])
    response = client.post(f"/api/v1/evaluations/{run.id}/retry", json={}, headers=lead)
    assert response.status_code == 409  # its job is still queued
    job = session.get(Job, run.job_id)
    assert job is not None
    job.state = "succeeded"
    session.flush()
    retried = client.post(f"/api/v1/evaluations/{run.id}/retry", json={}, headers=lead)
    assert retried.status_code == 202 and retried.json()["job_id"] != job.id
