"""One decision on every example matching a filter (issue 13): set-based, idempotent, leaving
what someone else holds alone, in the request for a few thousand and as a job beyond."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from app.collections.service import create_collection, item_ids
from app.datasets.service import create_dataset
from app.entrypoints.domains import load_every_job_kind
from app.models import Dataset, Example, Job, ReviewDecision
from app.platform.db import transaction
from app.platform.jobs.runner import execute_job
from app.review import bulk as bulk_module
from app.review.queue import take_lease
from app.scoring.chunks import upsert_scores
from app.scoring.service import choose_scorer, get_or_create_scorer
from tests.factories import make_dataset, make_example, make_token, make_user, unique

load_every_job_kind()


def _scored(session: Session, values: list[float], dataset: Dataset | None = None) -> Dataset:
    """A dataset whose examples have these `length` scores."""
    dataset = dataset or make_dataset(session)
    scorer = get_or_create_scorer(session, choose_scorer(session, "length"))
    examples = [make_example(session, dataset, i) for i in range(len(values))]
    upsert_scores(session, [
        {"content_hash": e.content_hash, "scorer_id": scorer.id, "value": v, "state": "ok",
         "raw": None, "details": {}}
        for e, v in zip(examples, values, strict=True)
    ])  # fmt: skip
    return dataset


def _statuses(session: Session, dataset: Dataset) -> list[str]:
    session.expire_all()
    return list(
        session.scalars(
            select(Example.status).where(Example.dataset_id == dataset.id).order_by(Example.id)
        )
    )


def test_a_bulk_reject_of_all_matching_a_score_filter(client: TestClient, session: Session) -> None:
    dataset = _scored(session, [1.0, 50.0, 2.0, 80.0, 3.0])
    first = session.scalars(
        select(Example).where(Example.dataset_id == dataset.id).order_by(Example.id)
    ).first()
    assert first is not None
    holder = make_user(session)
    assert take_lease(session, holder, first.id)  # someone is reviewing the first one
    _, lead = make_token(session, "lead")
    url = f"/api/v1/datasets/{dataset.name}/examples/bulk"
    body = {"action": "reject", "reason": "too short", "score": ["length<10"]}
    done = client.post(url, json=body, headers=lead)
    assert done.status_code == 200, done.text
    assert done.json()["counts"] == {"matched": 3, "changed": 2, "held": 1}
    assert _statuses(session, dataset) == ["candidate", "candidate", "rejected", "candidate",
                                           "rejected"]  # fmt: skip
    decisions = session.scalars(
        select(ReviewDecision).where(ReviewDecision.example_id.in_(
            select(Example.id).where(Example.dataset_id == dataset.id)))
    ).all()  # fmt: skip
    assert [(d.action, d.reason, d.status_before) for d in decisions] == [
        ("reject", "too short", "candidate")
    ] * 2
    again = client.post(url, json=body, headers=lead).json()
    assert again["counts"]["changed"] == 0  # safe to run twice


def test_bulk_refusals(client: TestClient, session: Session) -> None:
    dataset = _scored(session, [1.0])
    _, lead = make_token(session, "lead")
    _, annotator = make_token(session, "annotator")
    url = f"/api/v1/datasets/{dataset.name}/examples/bulk"
    assert client.post(url, json={"action": "accept"}, headers=annotator).status_code == 403
    no_reason = client.post(url, json={"action": "reject"}, headers=lead)
    assert no_reason.status_code == 422 and "reason" in no_reason.text
    no_collection = client.post(url, json={"action": "add"}, headers=lead)
    assert no_collection.status_code == 422 and "collection" in no_collection.text


def test_add_and_remove_by_filter(client: TestClient, session: Session) -> None:
    dataset = _scored(session, [10.0, 20.0, 30.0])
    collection = create_collection(session, unique("set"))
    _, lead = make_token(session, "lead")
    url = f"/api/v1/datasets/{dataset.name}/examples/bulk"
    added = client.post(
        url, json={"action": "add", "collection": collection.name, "score": ["length>=20"]},
        headers=lead,
    ).json()  # fmt: skip
    assert added["counts"] == {"matched": 2, "changed": 2}
    assert len(item_ids(session, collection)) == 2
    removed = client.post(
        url, json={"action": "remove", "collection": collection.name}, headers=lead
    ).json()
    assert removed["counts"] == {"matched": 3, "changed": 2}
    assert item_ids(session, collection) == []


def test_a_source_set_by_filter_and_cleared_by_ids(client: TestClient, session: Session) -> None:
    """Issue 13: an import without a source could never be given one afterwards."""
    dataset = _scored(session, [10.0, 20.0, 30.0])
    ids = list(session.scalars(select(Example.id).where(Example.dataset_id == dataset.id)))
    _, lead = make_token(session, "lead")
    url = f"/api/v1/datasets/{dataset.name}/examples/bulk"
    body = {"action": "set-source", "value": "wikihow", "score": ["length>=20"]}
    assert client.post(url, json=body, headers=lead).json()["counts"] == {
        "matched": 2, "changed": 2,
    }  # fmt: skip
    session.expire_all()
    sources = dict(
        session.execute(select(Example.id, Example.source).where(Example.id.in_(ids))).all()
    )
    assert [sources[i] for i in ids] == [None, "wikihow", "wikihow"]
    cleared = {"action": "set-source", "value": "", "ids": [ids[1]]}
    assert client.post(url, json=cleared, headers=lead).json()["counts"]["changed"] == 1
    category = {"action": "set-category", "value": "howto"}
    assert client.post(url, json=category, headers=lead).json()["counts"]["changed"] == 3


def test_many_run_as_a_job(committed: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk_module, "INLINE_LIMIT", 3)
    with transaction() as session:
        dataset = _scored(session, [1.0] * 5, create_dataset(session, unique("pool")))
        lead = make_user(session, "lead")
        matched, counts, job = bulk_module.start_bulk(
            session, lead, dataset, bulk_module.BulkAction(action="accept")
        )
        assert (matched, counts) == (5, None) and job is not None
        job_id, name = job.id, dataset.name
    assert execute_job(job_id) == "succeeded"
    with transaction() as session:
        finished = session.get(Job, job_id)
        assert finished is not None and finished.counts == {"matched": 5, "changed": 5, "held": 0}
        accepted = session.scalar(
            select(func.count()).where(
                Example.dataset_id == finished.dataset_id, Example.status == "accepted"
            )
        )
        assert accepted == 5, name


def test_the_dataset_page_applies_an_action_to_all_matching_or_the_ticked_rows(
    client: TestClient, session: Session
) -> None:
    from tests.web.test_pages import sign_in

    dataset = _scored(session, [1.0, 50.0, 2.0, 80.0])
    ids = list(session.scalars(select(Example.id).where(Example.dataset_id == dataset.id)))
    lead = make_user(session, "lead")
    token = sign_in(client, lead)
    page = client.get(f"/datasets/{dataset.name}", params={"score": "length<10"}).text
    assert 'id="bulk-form"' in page and 'name="score" value="length&lt;10"' in page
    url = f"/datasets/{dataset.name}/bulk"
    done = client.post(
        url,
        data={"csrf_token": token, "action": "reject", "reason": "short", "score": "length<10"},
        follow_redirects=False,
    )
    assert done.status_code == 303 and "score=length" in done.headers["location"]
    assert _statuses(session, dataset) == ["rejected", "candidate", "rejected", "candidate"]
    ticked = client.post(
        url, data={"csrf_token": token, "action": "accept", "ids": [str(ids[1])]},
        follow_redirects=False,
    )  # fmt: skip
    assert ticked.status_code == 303
    assert _statuses(session, dataset) == ["rejected", "accepted", "rejected", "candidate"]
    client.cookies.clear()
    sign_in(client, make_user(session, "annotator"))
    assert 'id="bulk-form"' not in client.get(f"/datasets/{dataset.name}").text
