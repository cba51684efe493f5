"""The generation API and pages: estimates, starting jobs, roles, provenance shown escaped."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.datasets.service import get_dataset
from app.generation.prompts import QUALITY_METHODS
from app.generation.service import (
    GenerationSpec,
    estimate,
    provenance_for,
    start_generation,
    variants_of,
)
from app.models import Job, Provenance
from app.platform.config import get_settings
from app.platform.jobs.dispatch import run_jobs_here
from tests.endpoints import configure_endpoint
from tests.factories import make_dataset, make_example, make_token, make_user
from tests.generation.conftest import PRICE_OUT
from tests.web.test_pages import sign_in


@pytest.fixture(autouse=True)
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A priced `default` endpoint (nothing is sent in these tests) and an unpriced `free`."""
    configure_endpoint(
        monkeypatch,
        "default",
        base_url="http://127.0.0.1:9/v1",
        model="test-model",
        price_in=0.01,
        price_out=PRICE_OUT,
    )
    configure_endpoint(monkeypatch, "free", base_url="http://127.0.0.1:9/v1", model="free-model")
    yield
    get_settings.cache_clear()


def _pool(session: Session, size: int = 3) -> str:
    dataset = make_dataset(session)
    for i in range(size):
        make_example(session, dataset, i, {"instruction": f"Explain idea number {i} simply."})
    return dataset.name


def test_estimates_count_calls_and_bound_the_cost(session: Session) -> None:
    name = _pool(session, 3)
    quality = estimate(session, GenerationSpec("evol-quality", name, "x", rounds=2))
    assert (quality.calls, quality.inputs, quality.rounds) == (6, 3, 2)
    # At least every completion token each call may use, at the output price.
    assert quality.max_cost_usd is not None and quality.max_cost_usd > 6 * 2048 / 1000 * PRICE_OUT
    instruct = estimate(session, GenerationSpec("evol-instruct", name, "x", n=2))
    assert (instruct.calls, instruct.rounds) == (2 * 4 * 3, 4)
    alpaca = estimate(session, GenerationSpec("self-instruct", name, "x", n=80))
    assert alpaca.calls == 10 and "8 kept per call" in alpaca.note
    free = estimate(session, GenerationSpec("evol-quality", name, "x", endpoint="free"))
    assert free.max_cost_usd is None and free.calls == 15


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"method": "evolve"}, "method"),
        ({"rounds": 11}, "rounds"),
        ({"n": 0}, "n"),
        ({"operations": ["deepen", "dance"]}, "operations"),
        ({"variant": "gpt"}, "variant"),
        ({"budget_usd": -1.0}, "budget_usd"),
    ],
)
def test_bad_specs_name_their_field(session: Session, changes: dict, field: str) -> None:
    spec = GenerationSpec("evol-instruct", _pool(session), "x")
    for key, value in changes.items():
        setattr(spec, key, value)
    with pytest.raises(Exception) as raised:
        estimate(session, spec)
    assert getattr(raised.value, "detail", {}).get("field") == field


def test_a_budget_needs_prices_and_nothing_is_created(session: Session) -> None:
    name = _pool(session)
    spec = GenerationSpec("evol-quality", name, "fresh", endpoint="free", budget_usd=1.0)
    with pytest.raises(Exception, match="needs token prices"):
        run_jobs_here(session)
        start_generation(session, spec)
    assert session.scalar(select(Job.id).where(Job.kind == "generate")) is None


def test_api_estimates_and_starts_for_leads_only(session: Session, client: TestClient) -> None:
    name = _pool(session)
    _, lead = make_token(session, "lead")
    _, annotator = make_token(session, "annotator")
    body = {"method": "evol-quality", "into": "polished", "rounds": 1, "budget_usd": 2.5}
    url = f"/api/v1/datasets/{name}/generate"
    assert client.post(url, json=body, headers=annotator).status_code == 403
    assert client.post(url + "/estimate", json=body, headers=annotator).status_code == 403
    assert client.post("/api/v1/datasets/nope/generate", json=body, headers=lead).status_code == 404
    shown = client.post(url + "/estimate", json=body, headers=lead)
    assert shown.status_code == 200 and shown.json()["calls"] == 3
    started = client.post(url, json=body, headers=lead)
    assert started.status_code == 202, started.text
    job = started.json()
    assert job["kind"] == "generate" and job["budget_usd"] == 2.5
    assert job["params"]["operations"] == list(QUALITY_METHODS)
    assert get_dataset(session, "polished").id is not None
    bad = client.post(url, json=body | {"rounds": 0}, headers=lead)
    assert bad.status_code == 422 and "rounds" in bad.text


def _generated_pair(session: Session) -> tuple[int, int]:
    """An original answer and one Evol-Quality rewrite of it, with provenance."""
    source = make_dataset(session)
    root = make_example(session, source, 1, {"instruction": "Why is the sea salty?"})
    target = make_dataset(session)
    rewrite = make_example(
        session, target, 2, {"instruction": "Why is the sea salty?", "output": "<b>Rivers</b>."}
    )
    rewrite.origin = "generated"
    session.add(
        Provenance(
            example_id=rewrite.id,
            method="evol-quality",
            round=1,
            parent_example_id=root.id,
            prompt="#Given Response#:\n<script>alert(1)</script>",
            endpoint="default",
            model="test-model",
            variant_group=root.id,
            details={"operation": "depth"},
        )
    )
    session.flush()
    return root.id, rewrite.id


def test_provenance_and_variants(session: Session, client: TestClient) -> None:
    root, rewrite = _generated_pair(session)
    found = provenance_for(session, [root, rewrite])
    assert set(found) == {rewrite}
    view = found[rewrite]
    assert (view.method, view.round, view.parent_example_id, view.operation) == (
        "evol-quality",
        1,
        root,
        "depth",
    )
    assert [(v.example_id, v.round) for v in view.variants] == [(root, 0), (rewrite, 1)]
    assert variants_of(session, root) == view.variants
    _, headers = make_token(session, "annotator")
    body = client.get(f"/api/v1/examples/{rewrite}/provenance", headers=headers).json()
    assert body["variant_group"] == root and len(body["variants"]) == 2
    assert client.get(f"/api/v1/examples/{root}/provenance", headers=headers).status_code == 404
    assert client.get("/api/v1/examples/999999/variants", headers=headers).status_code == 404
    assert len(client.get(f"/api/v1/examples/{root}/variants", headers=headers).json()) == 2

    sign_in(client, make_user(session, "annotator"))
    page = client.get(f"/examples/{rewrite}/provenance")
    assert page.status_code == 200
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "&lt;b&gt;Rivers&lt;/b&gt;" in page.text and "depth" in page.text


def test_generate_page_estimates_and_starts(session: Session, client: TestClient) -> None:
    name = _pool(session)
    sign_in(client, make_user(session, "annotator"))
    assert client.get(f"/datasets/{name}/generate").status_code == 403
    client.cookies.clear()
    token = sign_in(client, make_user(session, "lead"))
    page = client.get(f"/datasets/{name}/generate")
    assert page.status_code == 200 and "Estimate" in page.text and "<script>" not in page.text
    fragment = client.get(
        f"/datasets/{name}/generate/estimate",
        params={"method": "evol-quality", "rounds": "2", "endpoint": "default"},
        headers={"hx-request": "true"},
    )
    assert fragment.status_code == 200 and "<b>6</b>" in fragment.text and "up to" in fragment.text
    unknown = client.get(
        f"/datasets/{name}/generate/estimate", params={"method": "evol-quality", "endpoint": "x"}
    )
    assert "no LLM endpoint named" in unknown.text
    form = {"method": "evol-instruct", "into": "grown", "rounds": "1", "endpoint": "default"}
    refused = client.post(f"/datasets/{name}/generate", data=form, follow_redirects=False)
    assert refused.status_code == 403  # no CSRF token
    started = client.post(
        f"/datasets/{name}/generate", data=form | {"csrf_token": token}, follow_redirects=False
    )
    assert started.status_code == 303 and started.headers["location"] == "/jobs"
    job = session.scalar(select(Job).where(Job.kind == "generate"))
    assert job is not None and job.params["method"] == "evol-instruct"
    bad = client.post(
        f"/datasets/{name}/generate",
        data=form | {"csrf_token": token, "rounds": "99"},
        follow_redirects=False,
    )
    assert bad.status_code == 422 and "rounds: between 1 and 10" in bad.text
