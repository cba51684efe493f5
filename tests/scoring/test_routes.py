"""The scoring API: recipes, score jobs, histograms and score filters on the examples list."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.models import Dataset, Job, Scorer, ScoreState
from app.platform.config import get_settings
from app.scoring.chunks import upsert_scores
from app.scoring.service import choose_scorer, get_or_create_scorer
from tests.factories import make_dataset, make_example, make_token

TEMPLATE = "Rate this answer from 1 to 10.\n{instruction}\n{output}"


@pytest.fixture(autouse=True)
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A `default` endpoint in the settings (nothing is sent to it here)."""
    monkeypatch.setenv("SIFT_LLM__DEFAULT__BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("SIFT_LLM__DEFAULT__MODEL", "judge-1")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _scored(session: Session, values: list[float | None]) -> Dataset:
    """A dataset whose examples have these `lima` values (None: a parse error)."""
    dataset = make_dataset(session)
    scorer = get_or_create_scorer(session, choose_scorer(session, "lima"))
    rows = []
    for i, value in enumerate(values):
        example = make_example(session, dataset, i)
        state = ScoreState.OK if value is not None else ScoreState.PARSE_ERROR
        rows.append(
            {
                "content_hash": example.content_hash,
                "scorer_id": scorer.id,
                "value": value,
                "state": state.value,
                "raw": None,
                "details": {},
            }
        )
    make_example(session, dataset, len(values))  # one with no score at all
    upsert_scores(session, rows)
    return dataset


def test_a_lead_defines_a_recipe_and_a_changed_template_is_a_new_version(
    client: TestClient, session: Session
) -> None:
    _, lead = make_token(session, "lead")
    _, annotator = make_token(session, "annotator")
    body = {"name": "tone", "prompt_template": TEMPLATE, "low": 1, "high": 10}
    assert client.post("/api/v1/scorers", json=body, headers=annotator).status_code == 403
    first = client.post("/api/v1/scorers", json=body, headers=lead)
    assert first.status_code == 201, first.text
    assert (first.json()["version"], first.json()["model"]) == (1, "judge-1")
    again = client.post("/api/v1/scorers", json=body, headers=lead).json()
    assert again["key"] == first.json()["key"] and again["version"] == 1
    changed = {**body, "prompt_template": TEMPLATE + "\nBe strict."}
    second = client.post("/api/v1/scorers", json=changed, headers=lead).json()
    assert second["version"] == 2 and second["key"] != first.json()["key"]
    names = [(s["name"], s["version"]) for s in client.get("/api/v1/scorers", headers=lead).json()]
    assert ("tone", 1) in names and ("tone", 2) in names


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"prompt_template": "Rate {answer}"}, "prompt_template"),
        ({"low": 5, "high": 1}, "low"),
        ({"parse": "regex:no group"}, "parse"),
        ({"name": "alpagasus"}, "name"),
    ],
)
def test_a_bad_recipe_names_its_field(
    client: TestClient, session: Session, change: dict[str, object], field: str
) -> None:
    _, lead = make_token(session, "lead")
    body = {"name": "tone", "prompt_template": TEMPLATE, "low": 1, "high": 10} | change
    response = client.post("/api/v1/scorers", json=body, headers=lead)
    assert response.status_code == 422
    assert field in response.text


def test_starting_a_score_job(client: TestClient, session: Session) -> None:
    _, lead = make_token(session, "lead")
    _, annotator = make_token(session, "annotator")
    dataset = make_dataset(session)
    url = f"/api/v1/datasets/{dataset.name}/scores"
    assert client.post(url, json={"scorer": "lima"}, headers=annotator).status_code == 403
    response = client.post(url, json={"scorer": "alpagasus"}, headers=lead)
    assert response.status_code == 202, response.text
    job = response.json()
    assert (job["kind"], job["queue"], job["params"]["scorer"]) == ("score", "io", "alpagasus@1")
    assert job["params"]["endpoint"] == "default" and session.get(Job, job["id"]) is not None
    assert client.post(url, json={"scorer": "lima"}, headers=lead).json()["queue"] == "cpu"
    unknown = client.post(url, json={"scorer": "nope"}, headers=lead)
    assert unknown.status_code == 422 and "alpagasus" in unknown.text  # lists the built-ins
    missing = client.post(url, json={"scorer": "alpagasus", "endpoint": "other"}, headers=lead)
    assert missing.status_code == 422 and "SIFT_LLM__OTHER__BASE_URL" in missing.text
    unpriced = client.post(url, json={"scorer": "alpagasus", "budget_usd": 5}, headers=lead)
    assert unpriced.status_code == 422 and "PRICE" in unpriced.text


def test_histogram(client: TestClient, session: Session) -> None:
    _, annotator = make_token(session, "annotator")
    dataset = _scored(session, [0.0, 0.5, 0.5, 1.0, None])
    url = f"/api/v1/datasets/{dataset.name}/scores/lima/histogram"
    body = client.get(url, params={"bins": 2}, headers=annotator).json()
    assert body["states"] == {"ok": 4, "parse_error": 1, "failed": 0, "unscored": 1}
    assert [b["count"] for b in body["bins"]] == [1, 3]  # the top edge is in the last bin
    assert (body["min"], body["max"], body["mean"]) == (0.0, 1.0, 0.5)
    assert body["values"] == [
        {"value": 0.0, "count": 1},
        {"value": 0.5, "count": 2},
        {"value": 1.0, "count": 1},
    ]
    assert client.get(url.replace("lima", "nope"), headers=annotator).status_code == 404
    summary = client.get(f"/api/v1/datasets/{dataset.name}/scores", headers=annotator).json()
    assert summary == [{"scorer": "lima@1", "kind": "heuristic", "model": None, "scored": 4}]


def test_score_filters_on_the_examples_list(client: TestClient, session: Session) -> None:
    _, lead = make_token(session, "lead")
    dataset = _scored(session, [0.0, 0.5, 0.5, 1.0, None])
    url = f"/api/v1/datasets/{dataset.name}/examples"

    def count(*filters: str) -> int:
        response = client.get(url, params={"score": list(filters)}, headers=lead)
        assert response.status_code == 200, response.text
        return len(response.json()["items"])

    assert count() == 6
    assert count("lima>=0.5") == 3
    assert count("lima>0.5") == 1
    assert count("lima=0.5") == 2
    assert count("lima>=0.5", "lima<1") == 2
    assert count("lima@1!=0.5") == 2
    assert count("lima:parse_error") == 1
    assert count("lima:unscored") == 1
    bad = client.get(url, params={"score": "lima>>1"}, headers=lead)
    assert bad.status_code == 422 and "score" in bad.text
    assert client.get(url, params={"score": "nope>1"}, headers=lead).status_code == 404


def test_annotators_see_a_local_scorer_model_by_name_not_path(
    client: TestClient, session: Session
) -> None:
    _, annotator = make_token(session, "annotator")
    _, lead = make_token(session, "lead")
    session.add(Scorer(name="deita-quality", version=99, key="k" * 64, kind="local_logit_scorer",
                       model="/srv/models/deita-scorer", params={"model_path": "/srv/x"}))  # fmt: skip
    session.flush()
    seen = [
        s for s in client.get("/api/v1/scorers", headers=annotator).json() if s["version"] == 99
    ]
    assert seen[0]["model"] == "deita-scorer" and seen[0]["params"] == {"model_path": "(hidden)"}
    led = [s for s in client.get("/api/v1/scorers", headers=lead).json() if s["version"] == 99]
    assert led[0]["model"] == "/srv/models/deita-scorer"
