"""The datasets JSON API: bearer tokens, roles, keyset pages, and edits with If-Match."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Job, Revision
from app.review.queue import take_lease
from tests.factories import (
    alpaca_record,
    make_dataset,
    make_example,
    make_token,
    make_user,
    unique,
)

# ---------------------------------------------------------------- authentication and roles


def test_listing_datasets_needs_a_token(client: TestClient, session: Session) -> None:
    response = client.get("/api/v1/datasets")
    assert response.status_code == 401
    assert "bearer token" in response.json()["error"]
    bad = client.get("/api/v1/datasets", headers={"authorization": "Bearer sift_not-a-token"})
    assert bad.status_code == 401


def test_list_and_get_datasets(client: TestClient, session: Session) -> None:
    _, headers = make_token(session, "annotator")
    dataset = make_dataset(session)
    for i in range(2):
        make_example(session, dataset, i)
    listed = client.get("/api/v1/datasets", headers=headers)
    assert listed.status_code == 200
    by_name = {d["name"]: d for d in listed.json()}
    assert by_name[dataset.name]["example_count"] == 2
    one = client.get(f"/api/v1/datasets/{dataset.name}", headers=headers)
    assert one.status_code == 200 and one.json()["example_count"] == 2
    assert client.get(f"/api/v1/datasets/{unique('none')}", headers=headers).status_code == 404


def test_create_dataset(client: TestClient, session: Session) -> None:
    _, lead = make_token(session, "lead")
    name = unique("pool")
    response = client.post(
        "/api/v1/datasets", json={"name": name, "description": "d"}, headers=lead
    )
    assert response.status_code == 201
    assert response.json()["name"] == name and response.json()["example_count"] == 0
    again = client.post("/api/v1/datasets", json={"name": name}, headers=lead)
    assert again.status_code == 409
    assert "exists already" in again.json()["error"]
    assert client.post("/api/v1/datasets", json={"name": ""}, headers=lead).status_code == 422


def test_a_created_dataset_can_be_reached_by_its_name(client: TestClient, session: Session) -> None:
    _, lead = make_token(session, "lead")
    name = unique("team/pool")
    created = client.post("/api/v1/datasets", json={"name": name}, headers=lead)
    if created.status_code == 201:
        found = client.get(f"/api/v1/datasets/{quote(name, safe='')}", headers=lead)
        assert found.status_code == 200, "the API made a dataset it cannot address"
    else:
        assert created.status_code == 422


def test_annotators_cannot_create_datasets(client: TestClient, session: Session) -> None:
    _, annotator = make_token(session, "annotator")
    response = client.post("/api/v1/datasets", json={"name": unique("pool")}, headers=annotator)
    assert response.status_code == 403
    assert client.post("/api/v1/datasets", json={"name": unique("pool")}).status_code == 401


# ---------------------------------------------------------------- examples


def test_examples_keyset_pagination_walks_every_page(client: TestClient, session: Session) -> None:
    _, headers = make_token(session, "lead")
    dataset = make_dataset(session)
    ids = [make_example(session, dataset, i).id for i in range(11)]
    seen: list[int] = []
    after = None
    pages = 0
    while True:
        params = {"limit": 4, **({"after": after} if after is not None else {})}
        response = client.get(
            f"/api/v1/datasets/{dataset.name}/examples", params=params, headers=headers
        )
        assert response.status_code == 200
        page = response.json()
        pages += 1
        seen += [item["id"] for item in page["items"]]
        after = page["next_after"]
        if after is None:
            break
        assert after == page["items"][-1]["id"]
    assert pages == 3
    assert seen == ids  # no duplicates, no gaps, in order
    item = page["items"][0]
    assert item["dataset"] == dataset.name and item["version"] == 1
    assert item["messages"][1]["role"] == "assistant"


def test_examples_filters(client: TestClient, session: Session) -> None:
    _, headers = make_token(session, "lead")
    dataset = make_dataset(session)
    rows = [make_example(session, dataset, i) for i in range(5)]
    rows[0].source = rows[3].source = "wikihow"
    rows[3].status = "rejected"
    session.flush()
    url = f"/api/v1/datasets/{dataset.name}/examples"

    def ids(**params: str) -> list[int]:
        response = client.get(url, params=params, headers=headers)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert ids(source="wikihow") == [rows[0].id, rows[3].id]
    assert ids(status="rejected") == [rows[3].id]
    assert ids(q="number 4") == [rows[4].id]
    assert ids(source="wikihow", status="candidate") == [rows[0].id]
    assert client.get(url, params={"status": "nope"}, headers=headers).status_code == 422
    assert client.get(url, params={"limit": 0}, headers=headers).status_code == 422
    assert (
        client.get(f"/api/v1/datasets/{unique('x')}/examples", headers=headers).status_code == 404
    )


def test_get_example(client: TestClient, session: Session) -> None:
    _, headers = make_token(session, "lead")
    example = make_example(session, make_dataset(session))
    response = client.get(f"/api/v1/examples/{example.id}", headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["output"], body["version"]) == (example.id, example.output, 1)
    assert body["content_hash"] == example.content_hash
    assert client.get("/api/v1/examples/999999999", headers=headers).status_code == 404
    assert client.get(f"/api/v1/examples/{example.id}").status_code == 401


def test_patch_needs_if_match(client: TestClient, session: Session) -> None:
    _, headers = make_token(session, "lead")
    example = make_example(session, make_dataset(session))
    response = client.patch(f"/api/v1/examples/{example.id}", json={"output": "x"}, headers=headers)
    assert response.status_code == 428
    assert "If-Match" in response.json()["error"]


def test_patch_with_a_stale_version_is_a_conflict(client: TestClient, session: Session) -> None:
    _, headers = make_token(session, "lead")
    example = make_example(session, make_dataset(session))
    response = client.patch(
        f"/api/v1/examples/{example.id}", json={"output": "x"}, headers={**headers, "if-match": "7"}
    )
    assert response.status_code == 409
    assert response.json()["current_version"] == 1
    unchanged = client.get(f"/api/v1/examples/{example.id}", headers=headers).json()
    assert (unchanged["output"], unchanged["version"]) == (example.output, 1)


def test_patch_with_the_current_version(client: TestClient, session: Session) -> None:
    user, headers = make_token(session, "lead")
    example = make_example(session, make_dataset(session))
    current = client.get(f"/api/v1/examples/{example.id}", headers=headers).json()
    old_output = current["output"]
    response = client.patch(
        f"/api/v1/examples/{example.id}",
        json={"output": "A better answer.", "reason": "clearer"},
        headers={**headers, "if-match": f'"{current["version"]}"'},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["version"] == current["version"] + 1
    assert body["output"] == "A better answer."
    assert body["messages"][-1] == {"role": "assistant", "content": "A better answer."}
    revisions = session.scalars(select(Revision).where(Revision.example_id == example.id)).all()
    assert len(revisions) == 1
    revision = revisions[0]
    assert (revision.user_id, revision.reason) == (user.id, "clearer")
    assert revision.before["output"] == old_output
    assert revision.after["output"] == "A better answer."
    assert revision.version == body["version"]


def test_patch_then_patch_again_with_the_old_version(client: TestClient, session: Session) -> None:
    _, headers = make_token(session, "lead")
    example = make_example(session, make_dataset(session))
    url = f"/api/v1/examples/{example.id}"
    first = client.patch(url, json={"status": "accepted"}, headers={**headers, "if-match": "1"})
    assert first.status_code == 200
    second = client.patch(url, json={"status": "rejected"}, headers={**headers, "if-match": "1"})
    assert second.status_code == 409
    assert second.json()["current_version"] == first.json()["version"]


def test_patch_bad_requests(client: TestClient, session: Session) -> None:
    _, headers = make_token(session, "lead")
    example = make_example(session, make_dataset(session))
    url = f"/api/v1/examples/{example.id}"
    match = {**headers, "if-match": "1"}
    assert (
        client.patch("/api/v1/examples/999999999", json={"output": "x"}, headers=match).status_code
        == 404
    )
    assert (
        client.patch(url, json={"output": "x"}, headers={**headers, "if-match": "one"}).status_code
        == 422
    )
    assert client.patch(url, json={"content_hash": "x"}, headers=match).status_code == 422
    assert client.patch(url, json={"status": "great"}, headers=match).status_code == 422
    assert client.patch(url, json={"output": "x"}, headers={"if-match": "1"}).status_code == 401


@pytest.mark.parametrize("field", ["messages", "meta", "instruction", "output", "status"])
def test_patch_with_null_for_a_required_field_is_refused(
    client: TestClient, session: Session, field: str
) -> None:
    _, headers = make_token(session, "lead")
    example = make_example(session, make_dataset(session))
    url = f"/api/v1/examples/{example.id}"
    response = client.patch(url, json={field: None}, headers={**headers, "if-match": "1"})
    assert response.status_code == 422, response.text
    unchanged = client.get(url, headers=headers).json()
    assert unchanged["version"] == 1
    assert (unchanged["instruction"], unchanged["output"]) == (example.instruction, example.output)


# ---------------------------------------------------------------- annotators: leases and review


def test_an_annotator_cannot_set_a_status_or_edit_what_another_holds(
    client: TestClient, session: Session
) -> None:
    """Finding 4 of the hardening issue: while ann1 held an example, ann2 accepted it by PATCH
    with no review decision written."""
    ann1, _ = make_token(session, "annotator")
    ann2, headers = make_token(session, "annotator")
    held, free = (make_example(session, make_dataset(session), i) for i in range(2))
    assert take_lease(session, ann1, held.id) and take_lease(session, ann2, free.id)
    match = {**headers, "if-match": "1"}

    accept = client.patch(f"/api/v1/examples/{held.id}", json={"status": "accepted"}, headers=match)
    assert accept.status_code == 403 and accept.json()["field"] == "status"
    taken = client.patch(f"/api/v1/examples/{held.id}", json={"output": "mine"}, headers=match)
    assert taken.status_code == 409, taken.text
    assert taken.json()["held_by"] == ann1.name
    assert f"being reviewed by {ann1.name} until" in taken.json()["error"]
    own = client.patch(f"/api/v1/examples/{free.id}", json={"status": "accepted"}, headers=match)
    assert own.status_code == 403
    session.refresh(held)
    session.refresh(free)
    assert (held.status, held.version, free.status) == ("candidate", 1, "candidate")
    edited = client.patch(f"/api/v1/examples/{free.id}", json={"output": "better"}, headers=match)
    assert edited.status_code == 200 and edited.json()["output"] == "better"


def test_a_lead_may_set_a_status_but_not_edit_what_an_annotator_holds(
    client: TestClient, session: Session
) -> None:
    annotator = make_user(session, "annotator")
    _, lead = make_token(session, "lead")
    held, free = (make_example(session, make_dataset(session), i) for i in range(2))
    assert take_lease(session, annotator, held.id)
    match = {**lead, "if-match": "1"}
    refused = client.patch(f"/api/v1/examples/{held.id}", json={"output": "x"}, headers=match)
    assert refused.status_code == 409 and refused.json()["held_by"] == annotator.name
    decided = client.patch(
        f"/api/v1/examples/{free.id}", json={"status": "rejected"}, headers=match
    )
    assert decided.status_code == 200 and decided.json()["status"] == "rejected"


def test_annotators_read_only_the_examples_their_queue_gave_them(
    client: TestClient, session: Session
) -> None:
    annotator, headers = make_token(session, "annotator")
    dataset = make_dataset(session)
    given, other = (make_example(session, dataset, i) for i in range(2))
    assert take_lease(session, annotator, given.id)
    assert client.get(f"/api/v1/examples/{given.id}", headers=headers).status_code == 200
    assert client.get(f"/api/v1/examples/{other.id}", headers=headers).status_code == 404
    listing = client.get(f"/api/v1/datasets/{dataset.name}/examples", headers=headers)
    assert listing.status_code == 403
    _, lead = make_token(session, "lead")
    assert client.get(f"/api/v1/examples/{other.id}", headers=lead).status_code == 200


# ---------------------------------------------------------------- import and export over HTTP


def test_upload_starts_an_import_job(client: TestClient, session: Session) -> None:
    _, lead = make_token(session, "lead")
    name = unique("uploaded")
    body = json.dumps([alpaca_record(1)]).encode()
    response = client.post(
        f"/api/v1/datasets/{name}/imports",
        files={"file": ("data.json", body, "application/json")},
        data={"format": "alpaca", "skip_invalid": "true"},
        headers=lead,
    )
    assert response.status_code == 202, response.text
    job = response.json()
    assert (job["kind"], job["state"]) == ("import", "queued")
    assert job["params"]["format"] == "alpaca" and job["params"]["skip_invalid"] is True
    stored = session.get(Job, job["id"])
    assert stored is not None and stored.dataset_id is not None
    with open(job["params"]["path"], "rb") as fh:
        assert fh.read() == body


def test_upload_refuses_annotators_and_unknown_formats(
    client: TestClient, session: Session
) -> None:
    _, annotator = make_token(session, "annotator")
    _, lead = make_token(session, "lead")
    files = {"file": ("data.json", b"[]", "application/json")}
    url = f"/api/v1/datasets/{unique('up')}/imports"
    assert client.post(url, files=files, headers=annotator).status_code == 403
    response = client.post(url, files=files, data={"format": "yaml"}, headers=lead)
    assert response.status_code == 422


def test_export_streams_the_dataset(client: TestClient, session: Session) -> None:
    _, lead = make_token(session, "lead")
    _, annotator = make_token(session, "annotator")
    dataset = make_dataset(session)
    rows = [make_example(session, dataset, i) for i in range(3)]
    url = f"/api/v1/datasets/{dataset.name}/export"
    response = client.get(url, params={"format": "alpaca"}, headers=lead)
    assert response.status_code == 200
    assert response.json() == [
        {"instruction": r.instruction, "input": r.input, "output": r.output} for r in rows
    ]
    lines = client.get(url, headers=lead).text.splitlines()
    assert [json.loads(line)["content_hash"] for line in lines] == [r.content_hash for r in rows]
    assert client.get(url, headers=annotator).status_code == 403
    assert client.get(url, params={"format": "parquet"}, headers=lead).status_code == 422


def test_openapi_is_served(client: TestClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/api/v1/datasets" in paths
    assert "/api/v1/examples/{example_id}" in paths
    assert "/api/v1/jobs/{job_id}" in paths
