"""The collections API: create and fill a collection, preview and run a recipe into it,
freeze, compare and export snapshots; roles on every route."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.models import Job
from tests.factories import make_dataset, make_example, make_token, unique


def test_a_collection_is_filled_frozen_compared_and_exported(
    client: TestClient, session: Session
) -> None:
    _, lead = make_token(session, "lead")
    _, annotator = make_token(session, "annotator")
    dataset = make_dataset(session)
    examples = [make_example(session, dataset, i, source="wikihow") for i in range(4)]
    name = unique("set")
    body = {"name": name, "target_size": 3, "quotas": {"source": {"wikihow": 2}}}
    assert client.post("/api/v1/collections", json=body, headers=annotator).status_code == 403
    created = client.post("/api/v1/collections", json=body, headers=lead)
    assert created.status_code == 201, created.text
    items = f"/api/v1/collections/{name}/items"
    ids = [e.id for e in examples]
    too_many = client.post(items, json={"example_ids": ids[:3]}, headers=lead)
    assert too_many.status_code == 409 and "quota" in too_many.text
    added = client.post(items, json={"example_ids": ids[:2], "reason": "clear"}, headers=lead)
    assert added.json() == {"changed": 2, "size": 2}
    state = client.get(f"/api/v1/collections/{name}", headers=annotator).json()
    assert state["filled"] == {"source": {"wikihow": 2}} and state["size"] == 2

    snapshots = f"/api/v1/collections/{name}/snapshots"
    first = client.post(snapshots, json={"note": "v1"}, headers=lead).json()
    assert first["example_count"] == 2 and first["note"] == "v1"
    assert client.post(snapshots, headers=lead).json()["id"] == first["id"]  # same content
    client.post(f"{items}/remove", json={"example_ids": [ids[0]]}, headers=lead)
    client.post(items, json={"example_ids": [ids[2]]}, headers=lead)
    second = client.post(snapshots, headers=lead).json()
    listed = client.get(snapshots, headers=annotator).json()
    assert [s["id"] for s in listed] == [second["id"], first["id"]]
    diff = client.get(f"/api/v1/snapshots/{first['id']}/compare/{second['id']}", headers=annotator)
    assert diff.json() == {"added": [ids[2]], "removed": [ids[0]], "edited": []}

    export = f"/api/v1/snapshots/{second['id']}/export"
    assert client.get(export, headers=annotator).status_code == 403
    lines = client.get(export, params={"format": "jsonl"}, headers=lead).text.splitlines()
    assert [json.loads(line)["content_hash"] for line in lines] == [
        examples[1].content_hash,
        examples[2].content_hash,
    ]
    assert [json.loads(line)["status"] for line in lines] == ["candidate", "candidate"]
    assert client.get("/api/v1/snapshots/999999/export", headers=lead).status_code == 404


def test_a_snapshot_of_accepted_examples_only(client: TestClient, session: Session) -> None:
    _, lead = make_token(session, "lead")
    dataset = make_dataset(session)
    examples = [make_example(session, dataset, i) for i in range(3)]
    examples[0].status, examples[2].status = "accepted", "rejected"
    session.flush()
    name = unique("set")
    client.post("/api/v1/collections", json={"name": name}, headers=lead)
    ids = [e.id for e in examples]
    client.post(f"/api/v1/collections/{name}/items", json={"example_ids": ids}, headers=lead)
    snapshots = f"/api/v1/collections/{name}/snapshots"
    frozen = client.post(snapshots, json={"only_accepted": True}, headers=lead).json()
    assert frozen["example_count"] == 1 and frozen["only_accepted"] is True
    assert frozen["left_out"] == {"rejected": 1, "unreviewed": 1}
    export = f"/api/v1/snapshots/{frozen['id']}/export"
    [line] = client.get(export, params={"format": "jsonl"}, headers=lead).text.splitlines()
    assert (json.loads(line)["id"], json.loads(line)["status"]) == (ids[0], "accepted")


def test_preview_and_select(client: TestClient, session: Session) -> None:
    _, lead = make_token(session, "lead")
    _, annotator = make_token(session, "annotator")
    dataset = make_dataset(session)
    for i in range(6):
        make_example(session, dataset, i)
    name = unique("set")
    client.post("/api/v1/collections", json={"name": name}, headers=lead)
    recipe = {"dataset": dataset.name, "method": "random", "budget": 4, "seed": 3}
    assert (
        client.post("/api/v1/selections/preview", json=recipe, headers=annotator).status_code == 403
    )
    shown = client.post("/api/v1/selections/preview", json=recipe, headers=lead).json()
    assert (shown["pool"], shown["selected"], len(shown["example_ids"])) == (6, 4, 4)
    again = client.post("/api/v1/selections/preview", json=recipe, headers=lead).json()
    assert again["example_ids"] == shown["example_ids"]  # seeded
    started = client.post(
        f"/api/v1/collections/{name}/select", json={**recipe, "name": "baseline"}, headers=lead
    )
    assert started.status_code == 202, started.text
    job = session.get(Job, started.json()["id"])
    assert job is not None and job.kind == "select" and job.params["name"] == "baseline"
    bad = client.post("/api/v1/selections/preview", json={**recipe, "method": "best"}, headers=lead)
    assert bad.status_code == 422 and "method" in bad.text
    missing = client.post(f"/api/v1/collections/{unique('no')}/select", json=recipe, headers=lead)
    assert missing.status_code == 404


def test_a_collection_is_renamed_and_deleted_unless_it_has_snapshots(
    client: TestClient, session: Session
) -> None:
    """Issue 13: there was no way to rename or delete a collection."""
    _, lead = make_token(session, "lead")
    dataset = make_dataset(session)
    examples = [make_example(session, dataset, i) for i in range(2)]
    name, renamed = unique("set"), unique("renamed")
    client.post("/api/v1/collections", json={"name": name}, headers=lead)
    ids = [e.id for e in examples]
    client.post(f"/api/v1/collections/{name}/items", json={"example_ids": ids}, headers=lead)
    moved = client.patch(f"/api/v1/collections/{name}", json={"name": renamed}, headers=lead)
    assert moved.status_code == 200 and moved.json()["name"] == renamed
    assert client.get(f"/api/v1/collections/{name}", headers=lead).status_code == 404
    other = unique("other")
    client.post("/api/v1/collections", json={"name": other}, headers=lead)
    clash = client.patch(f"/api/v1/collections/{renamed}", json={"name": other}, headers=lead)
    assert clash.status_code == 409
    frozen = client.post(f"/api/v1/collections/{renamed}/snapshots", headers=lead).json()
    refused = client.delete(f"/api/v1/collections/{renamed}", headers=lead)
    assert refused.status_code == 409 and f"#{frozen['id']}" in refused.json()["error"]
    gone = client.delete(f"/api/v1/collections/{other}", headers=lead)
    assert gone.status_code == 200 and gone.json() == {"deleted": other, "items": 0}
    assert client.get(f"/api/v1/collections/{other}", headers=lead).status_code == 404
    # The examples of a deleted collection stay in their dataset.
    third = unique("third")
    client.post("/api/v1/collections", json={"name": third}, headers=lead)
    client.post(f"/api/v1/collections/{third}/items", json={"example_ids": ids}, headers=lead)
    assert client.delete(f"/api/v1/collections/{third}", headers=lead).json()["items"] == 2
    session.expire_all()
    assert all(session.get(type(e), e.id) is not None for e in examples)
