"""The dataset dashboard: counts and review progress, job forms that start real jobs or say
which field is wrong, custom recipes, near-duplicate clusters and downloads, by role."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.datasets.importer import import_file
from app.models import Dataset, Job, JobState, Scorer, User
from app.platform.config import get_settings
from app.platform.jobs.dispatch import run_jobs_here
from app.selection.service import run_dedup, start_dedup_job
from tests.factories import alpaca_record, make_dataset, make_example, make_user
from tests.web.test_pages import HOSTILE, sign_in

FORMS = ("score", "embed", "dedup", "recipes")


@pytest.fixture
def lead(session: Session) -> User:
    return make_user(session, "lead")


@pytest.fixture
def pool(session: Session) -> Dataset:
    """Six examples: two sources, one category, one accepted and one rejected."""
    dataset = make_dataset(session)
    for i in range(6):
        make_example(
            session,
            dataset,
            i,
            source="wikihow" if i < 4 else "alpaca",
            category="howto" if i % 2 else None,
            status={0: "accepted", 1: "rejected"}.get(i, "candidate"),
        )
    return dataset


@pytest.fixture
def endpoints(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Two configured LLM endpoints, one priced; nothing is sent to them by these tests."""
    monkeypatch.setenv("SIFT_LLM__DEFAULT__BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("SIFT_LLM__DEFAULT__MODEL", "judge-model")
    monkeypatch.setenv("SIFT_LLM__PRICED__BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("SIFT_LLM__PRICED__MODEL", "priced-model")
    monkeypatch.setenv("SIFT_LLM__PRICED__PRICE_IN", "0.001")
    monkeypatch.setenv("SIFT_LLM__PRICED__PRICE_OUT", "0.002")
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def jobs(session: Session, dataset: Dataset) -> list[Job]:
    return list(session.scalars(select(Job).where(Job.dataset_id == dataset.id).order_by(Job.id)))


def post(client: TestClient, url: str, token: str, **data: str):  # type: ignore[no-untyped-def]
    return client.post(url, data={"csrf_token": token, **data}, follow_redirects=False)


def test_annotators_see_the_dashboard_without_job_forms_or_exports(
    client: TestClient, session: Session, pool: Dataset
) -> None:
    sign_in(client, make_user(session, "annotator"))
    page = client.get(f"/datasets/{pool.name}")
    assert page.status_code == 200
    assert f'href="/review/queue?dataset={pool.name}"' in page.text
    assert f'hx-get="/datasets/{pool.name}/stats"' in page.text
    assert f'hx-get="/datasets/{pool.name}/scores"' in page.text
    for form in FORMS:
        assert f'action="/datasets/{pool.name}/{form}"' not in page.text
    assert "/export?format=" not in page.text
    assert " style=" not in page.text and "<style" not in page.text
    assert re.search(r"<script(?![^>]*\bsrc=)", page.text) is None


def test_leads_get_every_job_form_and_every_export(
    client: TestClient, session: Session, pool: Dataset, lead: User
) -> None:
    sign_in(client, lead)
    page = client.get(f"/datasets/{pool.name}").text
    for form in FORMS:
        assert f'action="/datasets/{pool.name}/{form}"' in page
    for fmt in ("alpaca", "sharegpt", "openai", "parquet", "jsonl"):
        assert f"/datasets/{pool.name}/export?format={fmt}" in page
    assert '<option value="alpagasus">' in page and '<option value="lima">' in page


def test_counts_per_status_source_and_category(
    client: TestClient, session: Session, pool: Dataset
) -> None:
    sign_in(client, make_user(session, "annotator"))
    fragment = client.get(f"/datasets/{pool.name}/stats", headers={"hx-request": "true"})
    assert fragment.status_code == 200 and "<html" not in fragment.text
    text = re.sub(r"\s+", " ", fragment.text)
    assert "6 examples" in text and "2 decided" in text

    def count(name: str) -> int:
        found = re.search(rf">{name}</th>.*?<td class=\"num\">([\d,]+)</td>", text)
        assert found, name
        return int(found.group(1))

    assert (count("candidate"), count("accepted"), count("rejected")) == (4, 1, 1)
    assert (count("wikihow"), count("alpaca"), count("howto"), count("—")) == (4, 2, 3, 3)
    assert " style=" not in fragment.text  # bar lengths are SVG attributes, never styles


def test_a_text_search_says_when_a_large_import_is_not_searchable_yet(
    client: TestClient,
    session: Session,
    lead: User,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SIFT_IMPORT_DEFER_SEARCH_MB", "0")
    get_settings.cache_clear()
    dataset = make_dataset(session)
    path = tmp_path / "pool.json"
    path.write_text(json.dumps([alpaca_record(i) for i in range(4)]))
    assert import_file(session, dataset, path).search_job is not None
    sign_in(client, lead)
    page = client.get(f"/datasets/{dataset.name}", params={"q": "number"}).text
    assert "4 examples of this dataset are still being indexed for text search" in page
    assert "still being indexed" not in client.get(f"/datasets/{dataset.name}").text


def test_an_empty_dataset_has_a_dashboard(client: TestClient, session: Session, lead: User) -> None:
    dataset = make_dataset(session)
    sign_in(client, lead)
    assert client.get(f"/datasets/{dataset.name}").status_code == 200
    stats = client.get(f"/datasets/{dataset.name}/stats").text
    assert "0 examples" in stats and "No examples yet." in stats
    assert "Nothing has scored" in client.get(f"/datasets/{dataset.name}/scores").text


def test_unknown_datasets_answer_404(client: TestClient, lead: User) -> None:
    sign_in(client, lead)
    for part in ("", "/stats", "/scores", "/jobs", "/duplicates", "/export?format=alpaca"):
        assert client.get(f"/datasets/no-such-pool{part}").status_code == 404, part


def test_the_score_form_starts_a_score_job(
    client: TestClient, session: Session, pool: Dataset, lead: User
) -> None:
    token = sign_in(client, lead)
    response = post(client, f"/datasets/{pool.name}/score", token, scorer="lima")
    assert response.status_code == 303
    assert response.headers["location"] == f"/datasets/{pool.name}#jobs"
    [job] = jobs(session, pool)
    assert (job.kind, job.queue, job.state) == ("score", "cpu", "queued")
    assert job.params["scorer"].startswith("lima@") and job.created_by_id == lead.id
    panel = client.get(f"/datasets/{pool.name}/jobs", headers={"hx-request": "true"}).text
    assert panel.lstrip().startswith('<div id="jobs"') and 'hx-trigger="every 1s"' in panel
    assert "<progress" in panel and " style=" not in panel
    job.state, job.done, job.total = JobState.SUCCEEDED.value, 6, 6
    session.flush()
    done = client.get(f"/datasets/{pool.name}/jobs", headers={"hx-request": "true"}).text
    assert 'value="6" max="6"' in done and "every 1s" not in done


def test_the_score_form_binds_endpoints_budgets_and_local_models(
    client: TestClient, session: Session, pool: Dataset, lead: User, endpoints: None, tmp_path: Path
) -> None:
    token = sign_in(client, lead)
    page = client.get(f"/datasets/{pool.name}").text
    assert '<option value="priced">' in page
    assert '<option value="default">' not in page  # the blank choice is the default already
    url = f"/datasets/{pool.name}/score"
    assert (
        post(
            client, url, token, scorer="alpagasus", endpoint="priced", budget_usd="2.5"
        ).status_code
        == 303
    )
    model = tmp_path / "deita-quality"
    model.mkdir()
    (model / "config.json").write_text("{}")
    assert post(client, url, token, scorer="deita-quality", model=str(model)).status_code == 303
    rated, local = jobs(session, pool)
    assert (rated.queue, rated.params["endpoint"], rated.budget_usd) == ("io", "priced", 2.5)
    assert local.queue == "gpu" and local.params["model"] == str(model.resolve())


SCORE_REFUSALS = [
    ({"scorer": "no-such-scorer"}, "scorer", "unknown scorer"),
    ({"scorer": ""}, "scorer", "scorer: choose a scorer"),
    (
        {"scorer": "lima", "budget_usd": "lots"},
        "budget_usd",
        "budget_usd: &#39;lots&#39; is not a number",
    ),
    ({"scorer": "lima", "budget_usd": "1"}, "budget_usd", "budget: lima calls no priced endpoint"),
    ({"scorer": "alpagasus"}, "endpoint", "no LLM endpoint named &#39;default&#39;"),
    (
        {"scorer": "deita-quality", "model": "/nowhere"},
        "model",
        "is not under a folder Sift may read models from",
    ),
]


def test_a_refused_score_form_names_the_field_and_writes_nothing(
    client: TestClient, session: Session, pool: Dataset, lead: User
) -> None:
    token = sign_in(client, lead)
    scorers = session.scalar(select(func.count()).select_from(Scorer))
    for data, field, message in SCORE_REFUSALS:
        response = post(client, f"/datasets/{pool.name}/score", token, **data)
        assert response.status_code == 422, data
        assert message in response.text, data
        marked = rf'name="{field}"[^>]*aria-invalid="true"'
        assert re.search(marked, response.text), data
    assert jobs(session, pool) == []
    assert session.scalar(select(func.count()).select_from(Scorer)) == scorers


def test_a_priced_budget_needs_a_priced_endpoint(
    client: TestClient, session: Session, pool: Dataset, lead: User, endpoints: None
) -> None:
    token = sign_in(client, lead)
    response = post(
        client, f"/datasets/{pool.name}/score", token, scorer="alpagasus", budget_usd="1"
    )
    assert response.status_code == 422 and "price" in response.text.lower()
    assert jobs(session, pool) == []


def test_the_embed_form_starts_an_embedding_job(
    client: TestClient, session: Session, pool: Dataset, lead: User
) -> None:
    token = sign_in(client, lead)
    assert post(client, f"/datasets/{pool.name}/embed", token).status_code == 303
    [job] = jobs(session, pool)
    assert job.kind == "embed" and job.params == {"model": "all-MiniLM-L6-v2"}
    bad = post(client, f"/datasets/{pool.name}/embed", token, model="/no/such/folder")
    assert bad.status_code == 422
    assert "model: /no/such/folder is not under a folder Sift may read models from" in bad.text
    assert 'value="/no/such/folder"' in bad.text
    assert len(jobs(session, pool)) == 1


def test_the_dedup_form_starts_a_dedup_job_or_names_the_field(
    client: TestClient, session: Session, pool: Dataset, lead: User
) -> None:
    token = sign_in(client, lead)
    url = f"/datasets/{pool.name}/dedup"
    assert post(client, url, token, method="minhash", threshold="0.7").status_code == 303
    [job] = jobs(session, pool)
    assert job.kind == "dedup" and job.params["method"] == "minhash"
    assert job.params["threshold"] == 0.7
    refusals = [
        ({"method": "exact", "threshold": "0.5"}, "threshold: exact duplicates take no threshold"),
        ({"method": "minhash", "threshold": "high"}, "threshold: &#39;high&#39; is not a number"),
        ({"method": "minhash", "threshold": "1.5"}, "threshold: must be in (0, 1]"),
        ({"method": "fuzzy"}, "method: &#39;fuzzy&#39; is not one of"),
        ({"method": "exact", "prefer": "nobody"}, "prefer: no scorer &#39;nobody&#39;"),
        ({"method": "embedding"}, "have no all-MiniLM-L6-v2 embedding"),
    ]
    for data, message in refusals:
        response = post(client, url, token, **data)
        assert response.status_code == 422, data
        assert message in response.text, data
    assert len(jobs(session, pool)) == 1


def test_a_lead_saves_a_custom_recipe_from_the_page(
    client: TestClient, session: Session, pool: Dataset, lead: User, endpoints: None
) -> None:
    token = sign_in(client, lead)
    template = "Rate the helpfulness of {output} for {instruction} from 1 to 10."
    response = post(
        client,
        f"/datasets/{pool.name}/recipes",
        token,
        recipe_name="helpfulness",
        prompt_template=template,
        low="1",
        high="10",
    )
    assert response.status_code == 200
    assert "Saved the recipe helpfulness@1" in response.text
    scorer = session.scalar(select(Scorer).where(Scorer.name == "helpfulness"))
    assert scorer is not None and scorer.prompt_template == template
    assert (scorer.kind, scorer.model, scorer.params["high"]) == ("llm_rating", "judge-model", 10)
    assert '<option value="helpfulness">' in client.get(f"/datasets/{pool.name}").text
    assert (
        post(client, f"/datasets/{pool.name}/score", token, scorer="helpfulness").status_code == 303
    )
    [job] = jobs(session, pool)
    assert job.params["scorer"] == "helpfulness@1" and job.queue == "io"


RECIPE_REFUSALS = [
    ({"recipe_name": "Bad Name", "low": "0", "high": "5"}, "a scorer name is 1 to 60"),
    ({"recipe_name": "alpagasus", "low": "0", "high": "5"}, "is the name of a built-in scorer"),
    ({"recipe_name": "mine", "high": "5"}, "low: required"),
    (
        {"recipe_name": "mine", "low": "0", "high": "5", "prompt_template": "{secret}"},
        "not {secret}",
    ),
    (
        {"recipe_name": "mine", "low": "0", "high": "5", "max_tokens": "many"},
        "max_tokens: &#39;many&#39; is not a whole number",
    ),
]


def test_a_refused_recipe_says_why(
    client: TestClient, session: Session, pool: Dataset, lead: User, endpoints: None
) -> None:
    token = sign_in(client, lead)
    for data, message in RECIPE_REFUSALS:
        form = {"prompt_template": "Rate {output}.", **data}
        response = post(client, f"/datasets/{pool.name}/recipes", token, **form)
        assert response.status_code == 422, data
        assert message in response.text, data
    assert session.scalar(select(Scorer).where(Scorer.name == "mine")) is None


def test_a_recipe_needs_a_configured_endpoint(
    client: TestClient, session: Session, pool: Dataset, lead: User
) -> None:
    token = sign_in(client, lead)
    response = post(
        client,
        f"/datasets/{pool.name}/recipes",
        token,
        recipe_name="orphan",
        prompt_template="Rate {output}.",
        low="0",
        high="5",
    )
    assert response.status_code == 422 and "no LLM endpoint named" in response.text


def test_job_forms_need_the_csrf_token_and_a_lead(
    client: TestClient, session: Session, pool: Dataset
) -> None:
    token = sign_in(client, make_user(session, "lead"))
    for form in FORMS:
        assert client.post(f"/datasets/{pool.name}/{form}", data={}).status_code == 403, form
    client.cookies.clear()
    token = sign_in(client, make_user(session, "annotator"))
    for form in FORMS:
        response = post(
            client, f"/datasets/{pool.name}/{form}", token, scorer="lima", method="exact"
        )
        assert response.status_code == 403, form
    assert client.get(f"/datasets/{pool.name}/export?format=alpaca").status_code == 403
    assert jobs(session, pool) == []


def test_leads_download_every_export_format(
    client: TestClient, session: Session, lead: User
) -> None:
    dataset = make_dataset(session)
    records = [alpaca_record(i) for i in range(3)]
    for i, record in enumerate(records):
        make_example(session, dataset, i, record=record)
    sign_in(client, lead)
    alpaca = client.get(f"/datasets/{dataset.name}/export?format=alpaca")
    assert alpaca.status_code == 200
    assert "attachment" in alpaca.headers["content-disposition"]
    assert json.loads(alpaca.content) == records
    lines = client.get(f"/datasets/{dataset.name}/export?format=jsonl").text.splitlines()
    assert len(lines) == 3
    parquet = client.get(f"/datasets/{dataset.name}/export?format=parquet")
    assert parquet.status_code == 200 and parquet.content[:4] == b"PAR1"
    assert pq.read_table(io.BytesIO(parquet.content)).num_rows == 3
    assert client.get(f"/datasets/{dataset.name}/export?format=yaml").status_code == 422


def test_the_duplicates_view_shows_clusters_with_their_representative(
    client: TestClient, session: Session, lead: User
) -> None:
    dataset = make_dataset(session)
    base = {"instruction": HOSTILE, "output": "Same answer."}
    first = make_example(session, dataset, 1, record=base)
    copy = make_example(session, dataset, 2, record=base | {"instruction": HOSTILE.upper()})
    alone = make_example(session, dataset, 3)
    run_jobs_here(session)
    job = start_dedup_job(session, dataset, "exact")
    assert run_dedup(session, job)["clusters"] == 1
    sign_in(client, make_user(session, "annotator"))
    page = client.get(f"/datasets/{dataset.name}/duplicates")
    assert page.status_code == 200
    assert (
        f'href="/examples/{first.id}"' in page.text and f'href="/examples/{copy.id}"' in page.text
    )
    assert f'href="/examples/{alone.id}"' not in page.text
    assert re.search(rf'class="rep">\s*<a href="/examples/{first.id}"', page.text)
    assert "<script>window" not in page.text and "&lt;script&gt;" in page.text
    assert "representative" in page.text
    none = client.get(f"/datasets/{dataset.name}/duplicates?method=minhash")
    assert "No near-duplicate clusters found by minhash" in none.text
    assert client.get(f"/datasets/{dataset.name}/duplicates?method=fuzzy").status_code == 422


def test_user_text_on_the_dashboard_is_escaped(
    client: TestClient, session: Session, lead: User
) -> None:
    name = "pool <img src=x onerror=alert(1)> {{7*7}}"
    dataset = make_dataset(session, name)
    dataset.description = HOSTILE
    make_example(session, dataset, 1, source=HOSTILE, category=HOSTILE)
    session.add(
        Job(kind="score", queue="io", params={"scorer": HOSTILE}, state="failed", error=HOSTILE,
            counts={}, dataset_id=dataset.id)
    )  # fmt: skip
    session.flush()
    sign_in(client, lead)
    url = f"/datasets/{name}"
    main = client.get(url)
    assert "&lt;img src=x onerror=alert(1)&gt; {{7*7}}" in main.text
    for page in (main, client.get(url + "/stats"), client.get(url + "/jobs")):
        assert page.status_code == 200
        assert "<script>window" not in page.text and "<img src=x" not in page.text
        assert "&lt;script&gt;window.__pwned=1&lt;/script&gt; {{7*7}}" in page.text


def test_counts_and_distributions_follow_changes_to_the_pool(
    client: TestClient, session: Session, pool: Dataset, lead: User
) -> None:
    from app.datasets.service import update_example
    from app.scoring.chunks import upsert_scores
    from app.scoring.service import choose_scorer, get_or_create_scorer

    sign_in(client, lead)
    stats = f"/datasets/{pool.name}/stats"
    assert "6 examples" in client.get(stats).text
    assert "6 examples" in client.get(stats).text  # served again from the cache
    extra = make_example(session, pool, 100, source="new-source")
    assert "7 examples" in client.get(stats).text and "new-source" in client.get(stats).text
    update_example(session, extra.id, extra.version, {"status": "accepted"}, lead)
    assert "3 decided" in re.sub(r"\s+", " ", client.get(stats).text)
    scores = f"/datasets/{pool.name}/scores"
    assert "Nothing has scored" in client.get(scores).text
    scorer = get_or_create_scorer(session, choose_scorer(session, "lima"))
    row = {"scorer_id": scorer.id, "value": 0.5, "state": "ok", "raw": None, "details": {}}
    upsert_scores(session, [{"content_hash": extra.content_hash, **row}])
    assert "<b>lima</b>" in client.get(scores).text


def test_the_dashboard_histograms_equal_the_per_scorer_ones(
    session: Session, pool: Dataset
) -> None:
    from app.scoring.chunks import upsert_scores
    from app.scoring.service import (
        choose_scorer,
        dataset_histograms,
        get_or_create_scorer,
        score_histograms,
    )

    examples = [make_example(session, pool, 200 + i) for i in range(7)]
    rows = []
    for name, values in (("lima", [0, 0.25, 0.5, 1, 1, None, 0.75]), ("length", [5, 9, 9, 40])):
        scorer = get_or_create_scorer(session, choose_scorer(session, name))
        for example, value in zip(examples, values, strict=False):
            state = "ok" if value is not None else "parse_error"
            rows.append({"content_hash": example.content_hash, "scorer_id": scorer.id,
                         "value": value, "state": state, "raw": None, "details": {}})  # fmt: skip
    upsert_scores(session, rows)
    expected = [h | {"values": None, "sampled": None} for h in score_histograms(session, pool, 24)]
    assert dataset_histograms(session, pool, 24) == expected
    assert [h["scorer"] for h in expected] == ["length", "lima"]
