"""A snapshot is named by its number or by its digest (whole or a prefix of 8+ hex digits), in
the API's paths and in every command's --snapshot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from app.collections.service import add_items, create_collection, create_snapshot, get_snapshot
from app.entrypoints.cli import cli
from app.models import Snapshot
from app.platform.db import transaction
from app.platform.errors import InvalidInput, NotFound
from tests.factories import make_dataset, make_example, make_token, unique


def _frozen(session: Session, n: int = 3) -> Snapshot:
    dataset = make_dataset(session)
    ids = [make_example(session, dataset).id for _ in range(n)]
    collection = create_collection(session, unique("c"), target_size=n)
    add_items(session, collection, ids)
    return create_snapshot(session, collection)[0]


def test_number_digest_and_prefix_name_the_same_snapshot(session: Session) -> None:
    snapshot = _frozen(session)
    for ref in (snapshot.id, str(snapshot.id), snapshot.digest, snapshot.digest[:16],
                snapshot.digest[:8].upper()):  # fmt: skip
        assert get_snapshot(session, ref).id == snapshot.id
    with pytest.raises(NotFound):
        get_snapshot(session, "0" * 16 if not snapshot.digest.startswith("0" * 16) else "f" * 16)
    for bad in ("abc", "snapshot-1", "", "12345678z"):
        with pytest.raises(InvalidInput):
            get_snapshot(session, bad)


def test_api_paths_take_a_digest(client: TestClient, session: Session) -> None:
    snapshot = _frozen(session)
    _, lead = make_token(session, "lead")
    short = snapshot.digest[:16]
    got = client.get(f"/api/v1/snapshots/{short}", headers=lead)
    assert got.status_code == 200 and got.json()["id"] == snapshot.id
    by_number = client.get(f"/api/v1/snapshots/{snapshot.id}/export?format=jsonl", headers=lead)
    by_digest = client.get(f"/api/v1/snapshots/{short}/export?format=jsonl", headers=lead)
    assert by_digest.status_code == 200 and by_digest.text == by_number.text
    assert len(by_digest.text.splitlines()) == 3
    diff = client.get(f"/api/v1/snapshots/{short}/compare/{snapshot.id}", headers=lead)
    assert diff.status_code == 200
    assert client.get("/api/v1/snapshots/nothex!", headers=lead).status_code in (404, 422)
    assert client.get("/api/v1/snapshots/abcdefabcdef", headers=lead).status_code == 404


def test_sift_export_takes_the_digest_sift_snapshot_prints(
    embedded: Engine, tmp_path: Path
) -> None:
    with transaction() as session:
        dataset = make_dataset(session)
        ids = [make_example(session, dataset).id for _ in range(2)]
        collection = create_collection(session, "refs", target_size=2)
        add_items(session, collection, ids)
    runner = CliRunner()
    made = runner.invoke(cli, ["snapshot", "--collection", "refs"])
    assert made.exit_code == 0, made.output
    digest = made.output.split("digest ")[1].split()[0]
    out = tmp_path / "out.jsonl"
    done = runner.invoke(
        cli, ["export", "--snapshot", digest, "--format", "jsonl", "--out", str(out)]
    )
    assert done.exit_code == 0, done.output
    assert len([json.loads(line) for line in out.read_text().splitlines()]) == 2
