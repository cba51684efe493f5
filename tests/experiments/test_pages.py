"""The experiment pages and API: the leaderboard with each metric's interval, and the overlap."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.collections.service import add_items, create_collection, create_snapshot
from app.evaluation.service import start_ifeval
from app.experiments.service import arms_of, create_experiment
from app.models import Dataset, Example, SnapshotItem
from app.platform.config import get_settings
from app.platform.jobs.dispatch import run_jobs_here
from app.training.service import build_params
from tests.evaluation.helpers import configure_endpoints
from tests.evaluation.test_ifeval_web import ANSWERS, RECORDS, _answered
from tests.factories import make_token, make_user
from tests.training.conftest import make_snapshot
from tests.training.tiny_model import build_tiny_base
from tests.web.test_pages import HOSTILE, sign_in


@pytest.fixture(autouse=True)
def endpoints(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    configure_endpoints(monkeypatch)
    yield
    get_settings.cache_clear()


def test_the_leaderboard_page_and_api(client: TestClient, session: Session, tmp_path: Path) -> None:
    records = [{"instruction": f"Say {w}.", "input": "", "output": w} for w in ("a", "b", "c")]
    snapshot = make_snapshot(session, records, tmp_path)
    ids = [i.example_id for i in session.query(SnapshotItem).filter_by(snapshot_id=snapshot.id)]
    two = create_collection(session, "two of them", target_size=2)
    add_items(session, two, [i for i in ids if i is not None][:2])
    other, _ = create_snapshot(session, two)
    base = build_tiny_base(tmp_path / "tiny", ["Say a b c"])
    experiment = create_experiment(
        session, "board", _pool(session, snapshot.id),
        2, [f"snapshot:{snapshot.id}", f"snapshot:{other.id}"], str(base),
        build_params("alpaca", max_steps=1, template="alpaca"),
    )  # fmt: skip
    first, second = arms_of(session, experiment)
    first.snapshot_id, second.snapshot_id = snapshot.id, other.id
    run_jobs_here(session)
    evaluation = start_ifeval(session, "alpha", prompts=RECORDS)
    _answered(session, evaluation, ANSWERS)
    first.eval_id = evaluation.id
    session.flush()

    _, token = make_token(session, "annotator")
    board = client.get("/api/v1/experiments/board", headers=token).json()
    assert [a["name"] for a in board["arms"]] == [f"snapshot:{snapshot.id}", f"snapshot:{other.id}"]
    assert [a["size"] for a in board["arms"]] == [3, 2]
    assert board["overlap"][0][1] == pytest.approx(2 / 3)
    metric = board["arms"][0]["metrics"]["prompt_strict"]
    assert metric["value"] == 0.5 and 0 <= metric["low"] <= 0.5 <= metric["high"] <= 1
    assert board["arms"][1]["metrics"] == {}
    assert client.get("/api/v1/experiments", headers=token).json()[0]["name"] == "board"
    assert client.get("/api/v1/experiments/none", headers=token).status_code == 404

    sign_in(client, make_user(session, "annotator"))
    listing = client.get("/experiments").text
    assert 'href="/experiments/board"' in listing and 'aria-current="page"' in listing
    page = client.get("/experiments/board").text
    assert 'id="leaderboard"' in page and "<b>0.500</b>" in page and 'id="overlap"' in page
    assert "0.67" in page and "95% interval" in page
    assert client.get(f"/experiments/{HOSTILE}").status_code == 404


def _pool(session: Session, snapshot_id: int) -> str:
    """The name of the dataset a snapshot's examples came from."""
    item = session.query(SnapshotItem).filter_by(snapshot_id=snapshot_id).first()
    assert item is not None and item.example_id is not None
    return session.get_one(Dataset, session.get_one(Example, item.example_id).dataset_id).name
