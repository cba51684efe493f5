"""The review API: next, decision with If-Match-like versions, undo, roles."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.factories import make_dataset, make_example, make_token


def test_next_decide_and_undo_over_the_api(client: TestClient, session: Session) -> None:
    dataset = make_dataset(session)
    first, second = make_example(session, dataset, 1), make_example(session, dataset, 2)
    _, ann = make_token(session, "annotator")
    _, bob = make_token(session, "annotator")
    taken = client.post("/api/v1/review/next", json={"dataset": dataset.name}, headers=ann)
    assert taken.status_code == 200 and taken.json()["example"]["id"] == first.id
    assert taken.json()["lease_expires_at"]
    other = client.post("/api/v1/review/next", json={"dataset": dataset.name}, headers=bob)
    assert other.json()["example"]["id"] == second.id
    url = f"/api/v1/review/examples/{first.id}/decision"
    held = client.post(url, json={"action": "accept", "version": 1}, headers=bob)
    assert held.status_code == 409
    done = client.post(url, json={"action": "accept", "version": 1}, headers=ann)
    assert done.status_code == 201 and done.json()["status_before"] == "candidate"
    stale = client.post(
        f"/api/v1/review/examples/{second.id}/decision",
        json={"action": "reject", "version": 7, "reason": "x"},
        headers=bob,
    )
    assert stale.status_code == 409 and stale.json()["current_version"] == 1
    assert client.post("/api/v1/review/undo", headers=ann).json() == {"example_id": first.id}
    assert first.status == "candidate"
    empty = client.post(
        "/api/v1/review/next", json={"dataset": dataset.name, "source": "none"}, headers=ann
    )
    assert empty.json() == {"example": None, "lease_expires_at": None}
    assert client.post("/api/v1/review/next", json={"dataset": dataset.name}).status_code == 401
    unknown = client.post("/api/v1/review/next", json={"dataset": "nope"}, headers=ann)
    assert unknown.status_code == 404
