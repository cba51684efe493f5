"""Creating and running experiments through the API: the command's fields, the lead's role,
typed errors as 4xx naming the field, one run job at a time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.models import Experiment
from tests.factories import make_dataset, make_example, make_token
from tests.training.tiny_model import build_tiny_base


def _body(base: Path, **changes: Any) -> dict[str, Any]:
    return {
        "name": "api-made", "dataset": "api-pool", "budget": 4, "arms": ["random", "longest"],
        "base_model": str(base), "template": "alpaca", "max_steps": 1,
        "settings": {"max_seq_length": 64, "micro_batch_size": 2}, "eval": "ifeval:3",
        "max_tokens": 8, "heldout": 0.2,
    } | changes  # fmt: skip


def test_create_and_run_through_the_api(
    client: TestClient, session: Session, tmp_path: Path
) -> None:
    pool = make_dataset(session, "api-pool")
    for i in range(20):
        make_example(session, pool, i)
    base = build_tiny_base(tmp_path / "tiny", ["a b c"])
    _, lead = make_token(session, "lead")
    _, annotator = make_token(session, "annotator")

    refused = client.post("/api/v1/experiments", json=_body(base), headers=annotator)
    assert refused.status_code == 403
    made = client.post("/api/v1/experiments", json=_body(base), headers=lead)
    assert made.status_code == 201, made.text
    board = made.json()
    assert [a["name"] for a in board["arms"]] == ["random", "longest"]
    assert board["heldout"] == 4 and board["budget"] == 4
    assert all(a["run"] is None and a["metrics"] == {} for a in board["arms"])
    stored = session.query(Experiment).filter_by(name="api-made").one()
    assert stored.params["max_seq_length"] == 64 and stored.params["max_steps"] == 1
    assert stored.evaluation["ifeval"] == 3 and stored.evaluation["heldout"] == 0.2
    listed = client.get("/api/v1/experiments", headers=annotator).json()
    assert listed[0]["name"] == "api-made" and listed[0]["heldout"] == 4

    for changes, status, field in (
        ({"name": "second", "arms": ["sometimes"]}, 422, "arm"),
        ({"name": "second", "eval": "mmlu"}, 422, "eval"),
        ({"name": "second", "heldout": 20}, 422, "heldout"),
        ({"name": "second", "dataset": "nowhere"}, 404, None),
        ({"name": "second", "settings": {"learning_rate": "fast"}}, 422, "learning_rate"),
        ({"name": "second", "base_model": "/etc"}, 422, "base_model"),
        ({"name": "second", "judge": None, "baseline": "random"}, 422, "judge"),
        ({"name": "api-made"}, 409, None),
    ):
        answer = client.post("/api/v1/experiments", json=_body(base, **changes), headers=lead)
        assert answer.status_code == status, (changes, answer.text)
        if field:
            assert field in answer.json()["error"], answer.json()
    missing = client.post(
        "/api/v1/experiments", json={"name": "third", "dataset": "api-pool"}, headers=lead
    )
    assert missing.status_code == 422 and "budget" in missing.json()["error"]

    assert client.post("/api/v1/experiments/api-made/run", headers=annotator).status_code == 403
    assert client.post("/api/v1/experiments/nothing/run", headers=lead).status_code == 404
    started = client.post("/api/v1/experiments/api-made/run", headers=lead)
    assert started.status_code == 202, started.text
    job = started.json()
    assert job["kind"] == "experiment-run" and job["state"] == "queued" and job["queue"] == "cpu"
    assert job["total"] == 8  # two arms, three steps each and the judge's (none here)
    # While it is under way, running again follows the same job.
    again = client.post("/api/v1/experiments/api-made/run", headers=lead).json()
    assert again["id"] == job["id"]
