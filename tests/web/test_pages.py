"""The browser pages: sign-in, CSRF, escaping, fragments, roles and uploads."""

from __future__ import annotations

import json
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.jobs.service import list_jobs
from app.models import Job, JobState, User
from tests.factories import alpaca_record, make_dataset, make_example, make_user

HOSTILE = "<script>window.__pwned=1</script> {{7*7}}"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(html: str) -> str:
    """The CSRF token a page's forms carry."""
    found = CSRF_FIELD.search(html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def sign_in(client: TestClient, user: User, password: str = "correct horse") -> str:
    """Sign `user` in through the login form; the session's fresh CSRF token."""
    token = csrf_from(client.get("/login").text)
    response = client.post(
        "/login",
        data={"name": user.name, "password": password, "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return csrf_from(client.get("/datasets").text)


@pytest.fixture
def annotator(session: Session) -> User:
    return make_user(session, "annotator")


@pytest.fixture
def lead(session: Session) -> User:
    return make_user(session, "lead")


def test_anonymous_visitors_are_sent_to_sign_in(client: TestClient) -> None:
    response = client.get("/datasets", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=/datasets")


def test_home_leads_to_the_datasets_and_annotators_to_their_queue(
    client: TestClient, annotator: User, lead: User
) -> None:
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/datasets"
    sign_in(client, annotator)
    assert client.get("/", follow_redirects=False).headers["location"] == "/review"
    client.cookies.clear()
    sign_in(client, lead)
    assert client.get("/", follow_redirects=False).headers["location"] == "/datasets"


def test_sign_in_with_the_right_password(client: TestClient, annotator: User) -> None:
    token = csrf_from(client.get("/login?next=/jobs").text)
    response = client.post(
        "/login",
        data={
            "name": annotator.name,
            "password": "correct horse",
            "csrf_token": token,
            "next": "/jobs",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/jobs"
    page = client.get("/datasets")
    assert page.status_code == 200
    assert annotator.name in page.text
    assert csrf_from(page.text) != token  # signing in gives the session a new CSRF token


def test_a_wrong_password_and_an_unknown_name_read_the_same(
    client: TestClient, annotator: User
) -> None:
    token = csrf_from(client.get("/login").text)
    wrong = client.post(
        "/login", data={"name": annotator.name, "password": "nope", "csrf_token": token}
    )
    unknown = client.post(
        "/login", data={"name": "nobody-at-all", "password": "nope", "csrf_token": token}
    )
    assert wrong.status_code == unknown.status_code == 400
    assert "Wrong name or password." in wrong.text
    assert "Wrong name or password." in unknown.text
    assert client.get("/datasets", follow_redirects=False).status_code == 303


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil.example"])
def test_sign_in_never_redirects_off_site(client: TestClient, annotator: User, target: str) -> None:
    token = csrf_from(client.get("/login").text)
    response = client.post(
        "/login",
        data={
            "name": annotator.name,
            "password": "correct horse",
            "csrf_token": token,
            "next": target,
        },
        follow_redirects=False,
    )
    assert response.headers["location"] == "/"


def test_sign_in_needs_the_csrf_token(client: TestClient, annotator: User) -> None:
    client.get("/login")
    response = client.post("/login", data={"name": annotator.name, "password": "correct horse"})
    assert response.status_code == 403


def test_sign_out_needs_the_csrf_token(client: TestClient, annotator: User) -> None:
    token = sign_in(client, annotator)
    assert client.post("/logout", follow_redirects=False).status_code == 403
    assert client.get("/datasets", follow_redirects=False).status_code == 200
    response = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303
    assert client.get("/datasets", follow_redirects=False).status_code == 303


def test_cancelling_a_job_needs_the_csrf_token(
    client: TestClient, session: Session, lead: User
) -> None:
    token = sign_in(client, lead)
    job = Job(kind="import", queue="cpu", params={}, state=JobState.QUEUED.value, counts={})
    session.add(job)
    session.flush()
    assert client.post(f"/jobs/{job.id}/cancel").status_code == 403
    assert client.post("/jobs/1/cancel").status_code == 403
    response = client.post(
        f"/jobs/{job.id}/cancel", headers={"x-csrf-token": token}, follow_redirects=False
    )
    assert response.status_code == 303
    session.refresh(job)
    assert job.state == JobState.CANCELLED.value


def test_annotators_cannot_cancel_jobs(
    client: TestClient, session: Session, annotator: User
) -> None:
    token = sign_in(client, annotator)
    job = Job(kind="import", queue="cpu", params={}, state=JobState.QUEUED.value, counts={})
    session.add(job)
    session.flush()
    response = client.post(f"/jobs/{job.id}/cancel", headers={"x-csrf-token": token})
    assert response.status_code == 403
    assert "Cancel" not in client.get("/jobs").text


def test_user_text_is_escaped_everywhere(
    client: TestClient, session: Session, annotator: User
) -> None:
    hostile_name = '<img src=x onerror="window.__pwned=1"> {{7*7}}'  # names cannot hold "/"
    dataset = make_dataset(session, f"pool {hostile_name}")
    example = make_example(
        session,
        dataset,
        instruction=HOSTILE,
        source=HOSTILE,
        category=HOSTILE,
        messages=[{"role": "user", "content": HOSTILE}, {"role": "assistant", "content": HOSTILE}],
        meta={"note": HOSTILE},
    )
    sign_in(client, annotator)
    listing = client.get("/datasets")
    detail = client.get(f"/datasets/pool {hostile_name}")
    example_page = client.get(f"/examples/{example.id}")
    for page in (listing, detail, example_page):
        assert page.status_code == 200, page.text
        assert "<script>" not in page.text and "<img src=x" not in page.text
    for page in (listing, detail):
        assert "&lt;img src=x onerror=" in page.text
    for page in (detail, example_page):
        assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in page.text
        assert "&lt;/script&gt; {{7*7}}" in page.text  # shown as written, never evaluated
        assert "&lt;/script&gt; 49" not in page.text


def test_pages_carry_the_content_security_policy(client: TestClient, annotator: User) -> None:
    for response in (client.get("/login"), client.get("/datasets", follow_redirects=False)):
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy
        assert "unsafe-inline" not in policy
    sign_in(client, annotator)
    page = client.get("/datasets")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "<style" not in page.text
    assert " style=" not in page.text
    assert re.search(r"<script(?![^>]*\bsrc=)", page.text) is None  # no inline script


def test_htmx_gets_only_the_examples_table(
    client: TestClient, session: Session, annotator: User
) -> None:
    dataset = make_dataset(session)
    for i in range(3):
        make_example(session, dataset, i, source="wikihow" if i else "alpaca")
    sign_in(client, annotator)
    whole = client.get(f"/datasets/{dataset.name}")
    assert "<html" in whole.text
    fragment = client.get(
        f"/datasets/{dataset.name}?source=wikihow", headers={"hx-request": "true"}
    )
    assert fragment.status_code == 200
    assert "<html" not in fragment.text
    assert fragment.text.lstrip().startswith('<div id="examples">')
    assert "Say the number 1." in fragment.text
    assert "Say the number 0." not in fragment.text


def test_examples_page_by_keyset(client: TestClient, session: Session, annotator: User) -> None:
    dataset = make_dataset(session)
    examples = [make_example(session, dataset, i) for i in range(55)]
    sign_in(client, annotator)
    first = client.get(f"/datasets/{dataset.name}?status=candidate")
    link = re.search(r'href="([^"]*after=(\d+)[^"]*)"', first.text)
    assert link is not None
    assert int(link.group(2)) == examples[49].id
    assert "status=candidate" in link.group(1)
    second = client.get(link.group(1).replace("&amp;", "&"))
    assert second.text.count('href="/examples/') == 2 * 5  # id and prompt link each
    assert "Next page" not in second.text


def test_an_example_shows_its_turns_and_facts(
    client: TestClient, session: Session, annotator: User
) -> None:
    example = make_example(session, make_dataset(session), 7, source="wikihow", category="howto")
    sign_in(client, annotator)
    page = client.get(f"/examples/{example.id}")
    assert page.status_code == 200
    assert "Say the number 7." in page.text
    assert "The number is 7." in page.text
    assert "wikihow" in page.text and "howto" in page.text
    assert client.get("/examples/999999999").status_code == 404


def test_annotators_cannot_import(client: TestClient, annotator: User) -> None:
    token = sign_in(client, annotator)
    assert 'action="/datasets/import"' not in client.get("/datasets").text
    response = client.post(
        "/datasets/import",
        data={"csrf_token": token, "dataset": "nope", "format": "alpaca"},
        files={"file": ("data.json", b"[]", "application/json")},
    )
    assert response.status_code == 403


def test_an_upload_starts_an_import_job(client: TestClient, session: Session, lead: User) -> None:
    token = sign_in(client, lead)
    records = [alpaca_record(i) for i in range(3)]
    response = client.post(
        "/datasets/import",
        data={
            "csrf_token": token,
            "dataset": "uploaded",
            "format": "alpaca",
            "skip_invalid": "true",
        },
        files={"file": ("records.json", json.dumps(records).encode(), "application/json")},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/jobs"
    job = list_jobs(session)[0]
    assert job.kind == "import"
    assert job.params["format"] == "alpaca"
    assert job.params["skip_invalid"] is True
    assert job.created_by_id == lead.id
    with open(job.params["path"], "rb") as saved:
        assert json.loads(saved.read()) == records
    jobs_page = client.get("/jobs")
    assert "uploaded" in jobs_page.text
    assert "<progress" in jobs_page.text
    assert 'hx-trigger="every 1s"' in jobs_page.text


def test_a_bad_upload_is_explained(client: TestClient, lead: User) -> None:
    token = sign_in(client, lead)
    response = client.post(
        "/datasets/import",
        data={"csrf_token": token, "dataset": "x", "format": "yaml"},
        files={"file": ("records.yaml", b"a: 1", "text/yaml")},
    )
    assert response.status_code == 422
    assert "unknown format" in response.text


def test_the_jobs_table_stops_polling_when_nothing_moves(
    client: TestClient, session: Session, annotator: User
) -> None:
    session.add(
        Job(
            kind="import",
            queue="cpu",
            params={},
            state=JobState.SUCCEEDED.value,
            counts={},
            done=10,
            total=10,
        )
    )
    session.flush()
    sign_in(client, annotator)
    fragment = client.get("/jobs", headers={"hx-request": "true"})
    assert "<html" not in fragment.text
    assert 'value="10" max="10"' in fragment.text
    assert "every 1s" not in fragment.text


def test_htmx_cancel_answers_with_the_fresh_table(
    client: TestClient, session: Session, lead: User
) -> None:
    token = sign_in(client, lead)
    job = Job(kind="import", queue="cpu", params={}, state=JobState.QUEUED.value, counts={})
    session.add(job)
    session.flush()
    assert 'hx-trigger="every 1s"' in client.get("/jobs").text
    response = client.post(
        f"/jobs/{job.id}/cancel", headers={"x-csrf-token": token, "hx-request": "true"}
    )
    assert response.status_code == 200
    assert response.text.lstrip().startswith('<div id="jobs"')
    assert "cancelled" in response.text
    assert "every 1s" not in response.text
    again = client.post(
        f"/jobs/{job.id}/cancel", headers={"x-csrf-token": token, "hx-request": "true"}
    )
    assert again.status_code == 200  # cancelling twice is not an error


def test_a_paused_job_resumes_from_the_jobs_page(
    client: TestClient, session: Session, lead: User
) -> None:
    token = sign_in(client, lead)
    job = Job(
        kind="score",
        queue="io",
        params={},
        state=JobState.PAUSED_BUDGET.value,
        counts={"sent": 3, "cost": 0.000123456},
    )
    session.add(job)
    session.flush()
    page = client.get("/jobs").text
    assert "Resume" in page and "$0.0001" in page
    assert client.post(f"/jobs/{job.id}/resume").status_code == 403  # no CSRF token
    response = client.post(
        f"/jobs/{job.id}/resume", headers={"x-csrf-token": token, "hx-request": "true"}
    )
    assert response.status_code == 200 and "queued" in response.text
    session.refresh(job)
    assert job.state == JobState.QUEUED.value
    job.state = JobState.RUNNING.value  # a worker took it meanwhile: refused, with a notice
    session.flush()
    again = client.post(
        f"/jobs/{job.id}/resume", headers={"x-csrf-token": token, "hx-request": "true"}
    )
    assert again.status_code == 200 and f"job {job.id} is running" in again.text


def test_the_dataset_page_draws_score_histograms_and_filters_on_scores(
    client: TestClient, session: Session, annotator: User
) -> None:
    from app.scoring.chunks import upsert_scores
    from app.scoring.service import choose_scorer, get_or_create_scorer

    sign_in(client, annotator)
    dataset = make_dataset(session)
    scorer = get_or_create_scorer(session, choose_scorer(session, "lima"))
    examples = [make_example(session, dataset, i) for i in range(4)]
    upsert_scores(
        session,
        [
            {"content_hash": e.content_hash, "scorer_id": scorer.id, "value": v,
             "state": "ok", "raw": None, "details": {}}
            for e, v in zip(examples, [0.25, 0.5, 1.0, 1.0], strict=True)
        ],
    )  # fmt: skip
    page = client.get(f"/datasets/{dataset.name}/scores").text
    assert "<svg" in page and "<b>lima</b>" in page and "ok 4" in page
    # 24 bars, each a link that filters the examples by its range (a hit area under it).
    assert page.count("<rect x=") == 24 and page.count('class="bar-link"') == 24
    filtered = client.get(f"/datasets/{dataset.name}", params={"score": "lima>=0.5"}).text
    assert len(set(re.findall(r'href="/examples/(\d+)"', filtered))) == 3
    typo = client.get(f"/datasets/{dataset.name}", params={"score": "lima>>1"})
    assert typo.status_code == 200 and "is not SCORER OP NUMBER" in typo.text
    assert len(set(re.findall(r'href="/examples/(\d+)"', typo.text))) == 4


def test_an_error_page_keeps_the_navigation(client: TestClient, lead: User) -> None:
    """Issue 13: error pages lost the navigation (they get no user object)."""
    sign_in(client, lead)
    missing = client.get("/collections/no-such-collection-0x5eed")
    assert missing.status_code == 404
    assert 'href="/collections"' in missing.text
    assert f'<span class="who">{lead.name} <span class="role">lead</span>' in missing.text
