"""The Alpaca and Vicuna presets on a base model without a chat template: each trains with its
own template and says so; a snapshot is named by its number or its digest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from app.entrypoints.cli import cli
from app.models import TrainingRun
from app.platform.db import transaction
from tests.factories import make_token
from tests.training.conftest import make_snapshot

API = "/api/v1/training/runs"


def test_presets_fall_back_to_their_template_and_snapshots_by_digest(
    client: TestClient,
    session: Session,
    records: list[dict[str, Any]],
    base_model: Path,
    tmp_path: Path,
) -> None:
    snapshot = make_snapshot(session, records, tmp_path)
    _, lead = make_token(session, "lead")
    body = {"snapshot_id": snapshot.digest[:16], "base_model": str(base_model), "max_steps": 2}
    for preset in ("alpaca", "vicuna"):
        made = client.post(API, json=body | {"preset": preset}, headers=lead)
        assert made.status_code == 201, made.text
        assert made.json()["params"]["template"] == preset
        assert made.json()["snapshot_id"] == snapshot.id
    lima = client.post(API, json=body | {"preset": "lima"}, headers=lead)
    assert lima.status_code == 422 and "no chat template" in lima.json()["error"]
    unknown = client.post(API, json=body | {"snapshot_id": "00000000ff"}, headers=lead)
    assert unknown.status_code == 404
    # A named template is what the run asked for: no fallback, whatever the preset.
    named = client.post(
        API, json=body | {"preset": "alpaca", "template": "vicuna", "seed": 3}, headers=lead
    )
    assert named.status_code == 201 and named.json()["params"]["template"] == "vicuna"


def test_sift_train_says_which_template_stands_in(
    embedded: Engine, records: list[dict[str, Any]], base_model: Path, tmp_path: Path
) -> None:
    with transaction() as session:
        digest = make_snapshot(session, records, tmp_path).digest[:16]
    args = ["train", "--snapshot", digest, "--base-model", str(base_model), "--preset", "vicuna",
            "--max-steps", "1", "--set", "micro_batch_size=4", "--set", "batch_size=4",
            "--set", "max_seq_length=128", "--wait"]  # fmt: skip
    done = CliRunner().invoke(cli, args)
    assert done.exit_code == 0, done.output
    said = " ".join(done.output.split())  # the console wraps long lines
    assert "has no chat template: the vicuna preset trains with its own vicuna template" in said
    assert "succeeded" in done.output
    with transaction() as session:
        run = session.query(TrainingRun).one()
        assert run.params["template"] == "vicuna" and run.params["preset"] == "vicuna"
    bad = CliRunner().invoke(
        cli, ["train", "--snapshot", "not-a-ref", "--base-model", str(base_model)]
    )
    assert bad.exit_code == 1
    assert "neither a snapshot number nor a digest" in " ".join(bad.output.split())
