"""The evaluation pages: list with bars and the form, progress, prompts, escaping, roles."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.evaluation.service import import_test_set_records
from app.models import EvalRun, Job
from app.platform.config import get_settings
from tests.conftest import DATA
from tests.evaluation.helpers import configure_endpoints, judged_run
from tests.factories import make_user
from tests.web.test_pages import HOSTILE, sign_in

WIN = {"verdict_ab": "a", "verdict_ba": "tie", "verdict": "win", "state": "ok"}
TIE = {"verdict_ab": "a", "verdict_ba": "b", "verdict": "tie", "state": "ok"}
LOSE = {"verdict_ab": "b", "verdict_ba": "b", "verdict": "lose", "state": "ok"}
FAILED = {
    "verdict_ab": None,
    "verdict_ba": None,
    "verdict": "error",
    "state": "failed",
    "error": "judge (ab): HTTP 500 after 5 attempts",
    "judge_ab": None,
    "judge_ba": None,
}


@pytest.fixture(autouse=True)
def endpoints(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    configure_endpoints(monkeypatch)
    yield
    get_settings.cache_clear()


def _finish(session: Session, run: EvalRun) -> None:
    job = session.get(Job, run.job_id)
    assert job is not None
    job.state = "succeeded"
    session.flush()


def test_the_list_shows_bars_per_test_set_and_escapes(client: TestClient, session: Session) -> None:
    user = make_user(session, "annotator")
    for name, items in (
        ("vicuna", [WIN, WIN, TIE, LOSE]),
        ("wizardlm", [LOSE, FAILED]),
    ):
        run = judged_run(
            session, name, [{"prompt": f"{name} {i}"} | it for i, it in enumerate(items)]
        )
        _finish(session, run)
    sign_in(client, user)
    page = client.get("/evaluations")
    assert page.status_code == 200
    html = page.text
    assert 'href="/evaluations"' in html and 'aria-current="page"' in html
    # One figure for the pair of models, a row per test set, each part sized by its share.
    assert html.count('<figure class="eval-bars">') == 1
    assert re.search(r'<rect class="part-win"[^>]*width="(\d+\.\d+)"', html)
    widths = {
        (part, float(width))
        for part, width in re.findall(
            r'<rect class="part-(\w+)" x="[\d.]+" y="[\d.]+" width="([\d.]+)"', html
        )
    }
    assert ("win", 201.0) in widths and ("tie", 100.5) in widths and ("lose", 100.5) in widths
    assert ("lose", 201.0) in widths and ("error", 201.0) in widths
    assert "1.250" in html  # vicuna: (2 - 1) / 4 + 1
    assert "New evaluation" not in html  # annotators do not start evaluations
    assert "<script>window" not in html


def test_a_lead_starts_an_evaluation_from_the_form(client: TestClient, session: Session) -> None:
    lead = make_user(session, "lead")
    import_test_set_records(session, "qs", [{"prompt": HOSTILE}])
    token = sign_in(client, lead)
    page = client.get("/evaluations").text
    assert "New evaluation" in page and '<option value="endpoint:alpha">' in page
    form = {"model_a": "alpha", "model_b": "endpoint:beta", "test_set": "qs", "judge": "judge"}
    assert client.post("/evaluations", data=form).status_code == 403  # no CSRF token
    started = client.post("/evaluations", data=form | {"csrf_token": token}, follow_redirects=False)
    assert started.status_code == 303
    run_id = int(started.headers["location"].rsplit("/", 1)[1])
    detail = client.get(f"/evaluations/{run_id}")
    assert detail.status_code == 200 and 'hx-trigger="every 2s"' in detail.text
    fragment = client.get(f"/evaluations/{run_id}", headers={"hx-request": "true"}).text
    assert fragment.startswith('\n<div id="eval-progress"') or 'id="eval-progress"' in fragment
    assert "<html" not in fragment

    wrong = client.post("/evaluations", data=form | {"test_set": "nope", "csrf_token": token})
    assert wrong.status_code == 404 and "no test set" in wrong.text
    assert 'value="endpoint:beta"' in wrong.text  # the form comes back filled in


def test_annotators_cannot_start_or_retry(client: TestClient, session: Session) -> None:
    annotator = make_user(session, "annotator")
    run = judged_run(session, "t", [{"prompt": "x"} | FAILED])
    token = sign_in(client, annotator)
    form = {"model_a": "alpha", "model_b": "beta", "test_set": "t", "judge": "judge"}
    assert client.post("/evaluations", data=form | {"csrf_token": token}).status_code == 403
    retry = client.post(f"/evaluations/{run.id}/retry", data={"csrf_token": token})
    assert retry.status_code == 403


def test_the_evaluation_and_prompt_pages(client: TestClient, session: Session) -> None:
    lead = make_user(session, "lead")
    hostile = {
        "prompt": HOSTILE,
        "answers_a": [HOSTILE],
        "answers_b": ["<b>bold</b> and **strong**"],
        "judge_ab": f"8 3\n{HOSTILE}",
        "category": HOSTILE,
    }
    run = judged_run(session, "hostile", [hostile | WIN, {"prompt": "second"} | FAILED])
    other = judged_run(session, "other", [{"prompt": "elsewhere"} | WIN])
    _finish(session, run)
    token = sign_in(client, lead)

    page = client.get(f"/evaluations/{run.id}")
    assert page.status_code == 200
    assert "hx-trigger" not in page.text  # nothing moves any more
    assert "Ask again what failed" in page.text
    assert "judge (ab): HTTP 500" in page.text
    assert "<script>window" not in page.text and "&lt;script&gt;" in page.text
    items = re.findall(rf'href="/evaluations/{run.id}/items/(\d+)"', page.text)
    assert len(items) == 2

    item = client.get(f"/evaluations/{run.id}/items/{items[0]}")
    assert item.status_code == 200
    html = item.text
    assert "<script>window" not in html and "<b>bold</b>" not in html
    assert "&lt;b&gt;bold&lt;/b&gt; and <strong>strong</strong>" in html  # Markdown, no HTML
    assert "scores 8 / 3" in html
    assert "A shown first" in html and "B shown first" in html
    other_item = re.search(
        rf'href="/evaluations/{other.id}/items/(\d+)"', client.get(f"/evaluations/{other.id}").text
    )
    assert other_item is not None
    assert client.get(f"/evaluations/{run.id}/items/{other_item.group(1)}").status_code == 404
    assert client.get("/evaluations/999999").status_code == 404

    retried = client.post(
        f"/evaluations/{run.id}/retry", data={"csrf_token": token}, follow_redirects=False
    )
    assert retried.status_code == 303
    session.refresh(run)
    job = session.get(Job, run.job_id)
    assert job is not None and job.state == "queued"


def test_anonymous_visitors_sign_in_first(client: TestClient) -> None:
    response = client.get("/evaluations", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=/evaluations")


def test_a_lead_uploads_a_test_set_and_a_bad_record_is_named(
    client: TestClient, session: Session, tmp_path: Path
) -> None:
    token = sign_in(client, make_user(session, "lead"))
    uploads = get_settings().uploads_dir
    before = set(uploads.glob("*")) if uploads.exists() else set()
    vicuna = DATA / "alpagasus" / "vicuna_test_set.jsonl"
    name = f"vicuna-{tmp_path.name}"
    with vicuna.open("rb") as upload:
        done = client.post(
            "/evaluations/test-sets",
            data={"csrf_token": token, "name": name},
            files={"file": ("vicuna.jsonl", upload)},
            follow_redirects=False,
        )
    assert done.status_code == 303, done.text
    listing = client.get("/evaluations").text
    assert name in listing and "upload: vicuna.jsonl" in listing and ">80<" in listing
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question_id": 1, "text": "fine"}\n{"question_id": 2}\n')
    with bad.open("rb") as upload:
        refused = client.post(
            "/evaluations/test-sets",
            data={"csrf_token": token, "name": "bad"},
            files={"file": ("bad.jsonl", upload)},
        )
    assert refused.status_code == 422 and "record 2" in refused.text
    assert set(uploads.glob("*")) == before  # nothing left behind
    annotator = TestClient(client.app)
    sign_in(annotator, make_user(session))
    assert "test-set-upload" not in annotator.get("/evaluations").text
