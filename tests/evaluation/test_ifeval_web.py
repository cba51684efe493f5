"""IFEval in the API and on the evaluations pages: starting a run (roles, CSRF, idempotency),
its accuracies, the per-instruction table and each prompt's checked instructions."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.evaluation import ifeval
from app.evaluation.chunks import refresh_totals, upsert_items
from app.evaluation.service import prompts_of, start_ifeval
from app.models import EvalRun, EvalTestSet, Job
from app.platform.config import get_settings
from app.platform.jobs.dispatch import run_jobs_here
from tests.evaluation.helpers import configure_endpoints
from tests.factories import make_token, make_user
from tests.web.test_pages import HOSTILE, sign_in

RECORDS = [
    {"key": 1, "prompt": "Describe cats. Do not use any commas.",
     "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]},
    {"key": 2, "prompt": "Describe dogs in lowercase letters only, in at least 5 words.",
     "instruction_id_list": ["change_case:english_lowercase", "length_constraints:number_words"],
     "kwargs": [{}, {"relation": "at least", "num_words": 5}]},
]  # fmt: skip
ANSWERS = {"1": "Cats purr, sleep, and play.", "2": "dogs are loyal friends to everyone"}


@pytest.fixture(autouse=True)
def endpoints(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    configure_endpoints(monkeypatch)
    yield
    get_settings.cache_clear()


def _answered(session: Session, run: EvalRun, answers: dict[str, str]) -> None:
    """Items as the job leaves them: each answer checked by the rules, the totals recounted."""
    test_set = session.get(EvalTestSet, run.test_set_id)
    assert test_set is not None
    rows = []
    for prompt in prompts_of(session, test_set):
        checked = ifeval.check_response(
            prompt.turns[0],
            prompt.meta["instruction_id_list"],
            prompt.meta["kwargs"],
            answers[prompt.prompt_id],
        )
        rows.append({
            "run_id": run.id, "prompt_id": prompt.prompt_id, "position": prompt.position,
            "prompt": prompt.turns[0], "turns": prompt.turns, "category": None,
            "answers_a": [answers[prompt.prompt_id]], "answers_b": None, "verdict_ab": None,
            "verdict_ba": None, "judge_ab": None, "judge_ba": None, "error": None,
            "verdict": "pass" if all(checked.strict) else "fail", "state": "ok",
            "raw": checked.as_raw(),
        })  # fmt: skip
    upsert_items(session, rows)
    refresh_totals(session, run.id)
    job = session.get(Job, run.job_id)
    assert job is not None
    job.state = "succeeded"
    session.flush()
    session.refresh(run)


def test_a_lead_starts_ifeval_over_the_api(client: TestClient, session: Session) -> None:
    _, lead = make_token(session, "lead")
    _, annotator = make_token(session, "annotator")
    body = {"model": "alpha", "limit": 20}
    assert (
        client.post("/api/v1/evaluations/ifeval", json=body, headers=annotator).status_code == 403
    )
    started = client.post(
        "/api/v1/evaluations/ifeval", json=body, headers=lead | {"idempotency-key": "if-1"}
    )
    assert started.status_code == 202, started.text
    shown = started.json()
    assert (shown["kind"], shown["model_a"], shown["test_set"]) == (
        "ifeval",
        "endpoint:alpha",
        "ifeval",
    )
    assert shown["total"] == 20 and shown["state"] == "queued" and shown["metrics"] == {}
    assert shown["generation"]["max_tokens"] == 1280 and shown["winning_score"] is None
    again = client.post(
        "/api/v1/evaluations/ifeval", json=body, headers=lead | {"idempotency-key": "if-1"}
    )
    assert again.json()["id"] == shown["id"]
    other = client.post(
        "/api/v1/evaluations/ifeval",
        json=body | {"limit": 5},
        headers=lead | {"idempotency-key": "if-1"},
    )
    assert other.status_code == 422 and "Idempotency-Key" in other.text
    job = session.get(Job, shown["job_id"])
    assert job is not None and (job.kind, job.queue, job.total) == ("evaluate", "io", 20)
    test_set = session.query(EvalTestSet).filter_by(name="ifeval").one()
    assert test_set.prompt_count == 541 and test_set.format == "ifeval"
    for refused, status, text in (
        ({"model": "run:424242"}, 404, "no training run 424242"),
        ({"records": [{**RECORDS[0], "instruction_id_list": ["no:such"]}]}, 422, "no:such"),
        ({"records": [{**RECORDS[0], "kwargs": []}]}, 422, "one object per instruction"),
        ({"limit": 0}, 422, "limit"),
    ):
        answer = client.post("/api/v1/evaluations/ifeval", json=body | refused, headers=lead)
        assert answer.status_code == status and text in answer.text, answer.text


def test_accuracies_in_the_api_and_on_the_pages(client: TestClient, session: Session) -> None:
    run_jobs_here(session)
    run = start_ifeval(session, "alpha", prompts=RECORDS)
    _answered(session, run, ANSWERS)
    _, token = make_token(session, "annotator")
    shown = client.get(f"/api/v1/evaluations/{run.id}", headers=token).json()
    assert shown["state"] == "succeeded" and shown["test_set"].startswith("ifeval-")
    metrics = shown["metrics"]
    assert (metrics["prompt_strict"], metrics["prompt_loose"]) == (0.5, 0.5)
    assert (metrics["instruction_strict"], metrics["instruction_loose"]) == (2 / 3, 2 / 3)
    items = client.get(f"/api/v1/evaluations/{run.id}/items?verdict=fail", headers=token).json()
    assert [i["prompt_id"] for i in items] == ["1"]
    assert items[0]["raw"] == {"instructions": ["punctuation:no_comma"], "strict": [False],
                               "loose": [False]}  # fmt: skip

    sign_in(client, make_user(session, "annotator"))
    listing = client.get("/evaluations").text
    assert 'id="ifeval-runs"' in listing and "50.0%" in listing and "66.7%" in listing
    page = client.get(f"/evaluations/{run.id}").text
    assert 'IFEval <span class="muted">of</span> endpoint:alpha' in page
    assert 'data-metric="prompt_strict"><b>50.0%</b>' in page
    assert "change_case:english_lowercase" in page and "1 of 2" not in page
    assert "2 of 2" in page and "0 of 1" in page
    item_id = next(i["id"] for i in items)
    item = client.get(f"/evaluations/{run.id}/items/{item_id}").text
    assert "punctuation:no_comma" in item and "badge-fail" in item
    assert "Cats purr, sleep, and play." in item


def test_a_lead_starts_ifeval_from_the_form(client: TestClient, session: Session) -> None:
    lead = make_user(session, "lead")
    token = sign_in(client, lead)
    page = client.get("/evaluations").text
    assert "New IFEval run" in page
    form = {"model": "endpoint:alpha", "limit": "3", "max_tokens": "256"}
    assert client.post("/evaluations/ifeval", data=form).status_code == 403  # no CSRF token
    started = client.post(
        "/evaluations/ifeval", data=form | {"csrf_token": token}, follow_redirects=False
    )
    assert started.status_code == 303
    run_id = int(started.headers["location"].rsplit("/", 1)[1])
    run = session.get(EvalRun, run_id)
    assert run is not None and run.kind == "ifeval" and run.params["limit"] == 3
    detail = client.get(f"/evaluations/{run_id}").text
    assert 'hx-trigger="every 2s"' in detail and "prompts ifeval (3)" in detail
    wrong = client.post("/evaluations/ifeval", data=form | {"model": HOSTILE, "csrf_token": token})
    assert wrong.status_code == 422 and "<script>window" not in wrong.text
    annotator = make_user(session, "annotator")
    other = sign_in(client, annotator)
    assert client.post("/evaluations/ifeval", data=form | {"csrf_token": other}).status_code == 403
