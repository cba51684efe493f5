"""The experiment pages and API: the leaderboard with each metric's interval, and the overlap."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.collections.service import add_items, create_collection, create_snapshot
from app.evaluation.service import start_ifeval
from app.experiments.service import arms_of, build_snapshot, create_experiment, get_experiment
from app.models import Dataset, Example, Job, SnapshotItem
from app.platform.config import get_settings
from app.platform.jobs.dispatch import run_jobs_here
from app.scoring.chunks import upsert_scores
from app.scoring.service import choose_scorer, get_or_create_scorer
from app.training.service import build_params
from tests.evaluation.helpers import configure_endpoints
from tests.evaluation.test_ifeval_web import ANSWERS, RECORDS, _answered
from tests.factories import make_dataset, make_example, make_token, make_user
from tests.training.conftest import make_snapshot
from tests.training.tiny_model import build_tiny_base
from tests.web.test_pages import HOSTILE, csrf_from, sign_in


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


def test_create_and_run_from_the_pages(
    client: TestClient, session: Session, tmp_path: Path
) -> None:
    pool = make_dataset(session, "page-pool")
    scorer = get_or_create_scorer(session, choose_scorer(session, "length"))
    examples = [make_example(session, pool, i, {"output": "w " * (i + 1)}) for i in range(12)]
    upsert_scores(session, [
        {"content_hash": e.content_hash, "scorer_id": scorer.id, "value": float(len(e.output)),
         "state": "ok", "raw": None, "details": {}}
        for e in examples
    ])  # fmt: skip
    base = build_tiny_base(tmp_path / "tiny", ["a b c"])
    token = sign_in(client, make_user(session, "lead"))
    listing = client.get("/experiments").text
    assert 'id="experiment-form"' in listing and 'id="add-arm"' in listing
    form = {
        "csrf_token": token, "name": "from-page", "dataset": "page-pool", "budget": "3",
        "arm": ["random", "longest", ""], "base_model": str(base), "preset": "alpaca",
        "template": "alpaca", "max_steps": "1", "settings": "max_seq_length=64\n",
        "eval": "ifeval:2", "max_tokens": "8", "heldout": "2",
    }  # fmt: skip
    # A mistake comes back on the form, said in words, with what was typed kept.
    for changes, message in (
        ({"arm": ["random", f"threshold{HOSTILE}"]}, "arm: "),
        ({"heldout": "12"}, "heldout: "),
        ({"settings": "learning_rate"}, "settings: &#39;learning_rate&#39;: write NAME=VALUE"),
        ({"budget": "many"}, "budget: "),
    ):
        refused = client.post("/experiments", data=form | changes, follow_redirects=False)
        assert refused.status_code == 422 and message in refused.text, refused.text[-2000:]
        assert 'role="alert"' in refused.text and 'value="from-page"' in refused.text
        assert HOSTILE not in refused.text
    assert client.post("/experiments", data=form | {"csrf_token": "x"}).status_code == 403
    made = client.post("/experiments", data=form, follow_redirects=False)
    assert made.status_code == 303 and made.headers["location"] == "/experiments/from-page"
    page = client.get("/experiments/from-page").text
    assert 'id="run-experiment"' in page and "2 examples held out" in page
    assert 'hx-trigger="every 2s"' not in page  # nothing runs yet: no polling

    # Run: one job, followed live; the button gives way to the job's progress.
    ran = client.post(
        "/experiments/from-page/run", data={"csrf_token": token}, follow_redirects=False
    )
    assert ran.status_code == 303
    page = client.get("/experiments/from-page").text
    assert 'hx-trigger="every 2s"' in page and 'id="run-state"' in page
    assert "badge-queued" in page and 'id="run-experiment"' not in page
    fragment = client.get("/experiments/from-page", headers={"HX-Request": "true"}).text
    assert 'id="board"' in fragment
    assert "<html" not in fragment

    # The arms' distributions on one scorer's axis, once their snapshots exist.
    experiment = get_experiment(session, "from-page")
    for arm in arms_of(session, experiment):
        build_snapshot(session, experiment, arm)
    page = client.get("/experiments/from-page?scorer=length").text
    assert 'id="distributions"' in page and '<option value="length@1" selected>' in page
    assert page.count('<g data-arm="') == 2 and "n=3</text>" in page

    # A step that failed ends the run: its error is shown where the person looks.
    job = session.get_one(Job, experiment.run_job_id)
    job.state, job.error = (
        "failed",
        "arm random: training failed: no file /srv/models/x/config.json",
    )
    session.flush()
    page = client.get("/experiments/from-page").text
    assert 'role="alert"' in page and "no file /srv/models/x/config.json" in page
    assert 'id="run-experiment"' in page and 'hx-trigger="every 2s"' not in page

    annotator = TestClient(client.app)
    sign_in(annotator, make_user(session, "annotator"))
    seen = annotator.get("/experiments/from-page").text
    assert 'id="run-experiment"' not in seen and 'id="experiment-form"' not in seen
    assert "training failed" in seen and "/srv/models" not in seen
    assert (
        annotator.post(
            "/experiments/from-page/run",
            data={"csrf_token": csrf_from(seen)},
            follow_redirects=False,
        ).status_code
        == 403
    )
