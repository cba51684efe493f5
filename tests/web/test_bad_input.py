"""Bad input answers 4xx, never 500 (issue 18, finding 6): ids past bigint, NUL characters in
text, empty and reused idempotency keys, paths past the file system's name limit. And the API's
description is for signed-in people in production (finding 10)."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.datasets.importer import ImportRejected, import_file
from app.evaluation.testsets import parse_records
from app.models import Job
from app.platform.config import get_settings
from app.platform.errors import InvalidInput
from app.platform.jobs.dispatch import run_jobs_here
from tests.factories import make_dataset, make_example, make_token, write_jsonl
from tests.web.test_pages import sign_in

PAST_BIGINT = 2**63


def test_ids_past_bigint_answer_422_not_500(client: TestClient, session: Session) -> None:
    _, annotator = make_token(session, "annotator")
    _, lead = make_token(session, "lead")
    dataset = make_dataset(session)
    for url in (
        f"/api/v1/examples/{PAST_BIGINT}",
        f"/api/v1/jobs/{PAST_BIGINT * 4}",
        f"/api/v1/evaluations/1/items/{PAST_BIGINT}",
        f"/api/v1/examples/{PAST_BIGINT}/provenance",
    ):
        response = client.get(url, headers=annotator)
        assert response.status_code == 422, (url, response.text)
    for url in (f"/api/v1/datasets/{dataset.name}/examples?after={PAST_BIGINT}",):
        response = client.get(url, headers=lead)
        assert response.status_code == 422, (url, response.text)
    # Ids in range that name nothing stay 404.
    assert client.get(f"/api/v1/examples/{2**63 - 1}", headers=annotator).status_code == 404
    body = {"example_ids": [1, PAST_BIGINT]}
    added = client.post("/api/v1/collections/nothing/items", json=body, headers=lead)
    assert added.status_code == 422 and "example_ids.1" in added.json()["error"]


def test_a_database_data_error_is_a_422_whatever_route_let_it_through(
    client: TestClient, session: Session
) -> None:
    # The backstop behind the checks: PostgreSQL refusing a value is the request's fault.
    def overflowing() -> None:
        raise psycopg.errors.NumericValueOutOfRange("value out of range for type bigint")

    client.app.add_api_route("/api/v1/overflowing", overflowing)  # type: ignore[attr-defined]
    response = client.get("/api/v1/overflowing")
    assert response.status_code == 422
    assert "out of range" in response.json()["error"]


def test_nul_characters_are_refused_naming_the_field(client: TestClient, session: Session) -> None:
    _, lead = make_token(session, "lead")
    dataset = make_dataset(session)
    example = make_example(session, dataset)
    patched = client.patch(
        f"/api/v1/examples/{example.id}",
        json={"output": "fine\u0000then"},
        headers=lead | {"if-match": str(example.version)},
    )
    assert patched.status_code == 422, patched.text
    assert patched.json()["error"].startswith("output: ")
    assert "NUL" in patched.json()["error"]
    scored = client.post(
        f"/api/v1/datasets/{dataset.name}/scores", json={"scorer": "len\u0000"}, headers=lead
    )
    assert scored.status_code == 422 and scored.json()["error"].startswith("scorer: ")
    items = client.post(
        "/api/v1/collections/anything/items",
        json={"example_ids": [example.id], "reason": "why\u0000"},
        headers=lead,
    )
    assert items.status_code == 422 and items.json()["error"].startswith("reason: ")
    test_set = client.post(
        "/api/v1/test-sets",
        json={"name": "nul", "records": [{"prompt": "ok"}, {"prompt": "a\u0000"}]},
        headers=lead,
    )
    assert test_set.status_code == 422 and test_set.json()["error"].startswith("records.1.prompt")
    in_path = client.get("/api/v1/datasets/a%00b", headers=lead)
    assert in_path.status_code == 422 and "NUL" in in_path.json()["error"]
    in_query = client.get(f"/api/v1/datasets/{dataset.name}/examples?q=a%00", headers=lead)
    assert in_query.status_code == 422 and in_query.json()["error"].startswith("q: ")
    # Text that only spells the escape is text like any other.
    spelled = client.patch(
        f"/api/v1/examples/{example.id}",
        json={"output": "a literal \\u0000"},
        headers=lead | {"if-match": str(example.version)},
    )
    assert spelled.status_code == 200, spelled.text


def test_importers_report_a_record_with_a_nul_character(session: Session, tmp_path: Path) -> None:
    records = [{"instruction": "ok", "input": "", "output": "fine"},
               {"instruction": "bad\u0000", "input": "", "output": "x"}]  # fmt: skip
    path = write_jsonl(tmp_path / "nul.jsonl", records)
    with pytest.raises(ImportRejected) as rejected:
        import_file(session, make_dataset(session), path)
    assert "line 2" in str(rejected.value) and "instruction: " in str(rejected.value)
    with pytest.raises(InvalidInput) as refused:
        parse_records(enumerate([{"prompt": "ok"}, {"prompt": "no\u0000"}], start=1))
    assert "record 2: prompt: text must not contain NUL" in refused.value.message


def test_idempotency_keys_are_non_empty_and_scoped_to_caller_and_content(
    client: TestClient, session: Session
) -> None:
    run_jobs_here(session)
    _, first_lead = make_token(session, "lead")
    _, second_lead = make_token(session, "lead")
    ours, theirs = make_dataset(session), make_dataset(session)
    url = "/api/v1/datasets/{}/scores"
    empty = client.post(
        url.format(ours.name),
        json={"scorer": "length"},
        headers=first_lead | {"idempotency-key": ""},
    )
    assert empty.status_code == 422 and "idempotency" in empty.json()["error"].lower()
    keyed = first_lead | {"idempotency-key": "k-1"}
    first = client.post(url.format(ours.name), json={"scorer": "length"}, headers=keyed)
    assert first.status_code == 202, first.text
    again = client.post(url.format(ours.name), json={"scorer": "length"}, headers=keyed)
    assert again.json()["id"] == first.json()["id"]  # a retry is the same job
    # The same key with other content is a mistake, not the old job.
    other_scorer = client.post(url.format(ours.name), json={"scorer": "lima"}, headers=keyed)
    assert other_scorer.status_code == 422 and "different request" in other_scorer.json()["error"]
    other_dataset = client.post(url.format(theirs.name), json={"scorer": "length"}, headers=keyed)
    assert other_dataset.status_code == 422
    # Another lead's key is theirs: a job of their own, on their dataset.
    second = client.post(
        url.format(theirs.name),
        json={"scorer": "length"},
        headers=second_lead | {"idempotency-key": "k-1"},
    )
    assert second.status_code == 202 and second.json()["id"] != first.json()["id"]
    job = session.get(Job, second.json()["id"])
    assert job is not None and job.dataset_id == theirs.id
    assert session.query(Job).filter(Job.idempotency_key == "").count() == 0


def test_a_model_path_past_the_name_limit_is_a_422(client: TestClient, session: Session) -> None:
    _, lead = make_token(session, "lead")
    dataset = make_dataset(session)
    response = client.post(
        f"/api/v1/datasets/{dataset.name}/embeddings",
        json={"model": "/tmp/" + "m" * 300},
        headers=lead,
    )
    assert response.status_code == 422, response.text


def test_the_api_description_needs_sign_in_in_production(
    client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert client.get("/openapi.json").status_code == 200  # development: open
    monkeypatch.setattr(get_settings(), "env", "production")
    assert client.get("/openapi.json").status_code == 401
    docs = client.get("/api/docs", follow_redirects=False)
    assert docs.status_code == 303 and docs.headers["location"].startswith("/login")
    _, annotator = make_token(session, "annotator")
    assert (
        client.get("/openapi.json", headers={"authorization": "Bearer sift_nope"}).status_code
        == 401
    )
    described = client.get("/openapi.json", headers=annotator)
    assert described.status_code == 200 and "/api/v1/jobs" in described.json()["paths"]
    sign_in(client, make_token(session, "annotator")[0])
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/api/docs").status_code == 200


def test_a_key_raced_by_the_same_caller_gives_the_first_job(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.platform.jobs import dispatch

    run_jobs_here(session)
    user, _ = make_token(session, "lead")
    dataset = make_dataset(session)
    first = dispatch.create_job(
        session, "embed", {"model": "m"}, queue="cpu", user=user, dataset_id=dataset.id,
        idempotency_key="race",
    )  # fmt: skip
    # The second request looked before the first committed: its INSERT meets the first's key.
    real = dispatch.keyed_job
    calls: list[object] = []

    def late(*args: object) -> Job | None:
        calls.append(args)
        return None if len(calls) == 1 else real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(dispatch, "keyed_job", late)
    again = dispatch.create_job(
        session, "embed", {"model": "m"}, queue="cpu", user=user, dataset_id=dataset.id,
        idempotency_key="race",
    )  # fmt: skip
    assert again.id == first.id and len(calls) == 2
    assert session.query(Job).filter(Job.dataset_id == dataset.id).count() == 1
