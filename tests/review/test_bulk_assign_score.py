"""Bulk assign (the examples go to the assignees' queues first, and to nobody else's) and bulk
score (a score job restricted to the selection), through the API (issue 13)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from app.collections.service import add_items, create_collection
from app.datasets.service import create_dataset
from app.entrypoints.domains import load_every_job_kind
from app.models import Example, Job, ReviewAssignment, Score
from app.platform.db import transaction
from app.platform.jobs.runner import execute_job
from app.review import bulk as bulk_module
from app.review.queue import Queue, next_example, release, upcoming
from tests.factories import make_dataset, make_example, make_token, make_user, unique

load_every_job_kind()


def _ids(session: Session, dataset_id: int) -> list[int]:
    return list(
        session.scalars(
            select(Example.id).where(Example.dataset_id == dataset_id).order_by(Example.id)
        )
    )


def test_assigned_examples_go_to_their_annotator_first_and_to_nobody_else(
    client: TestClient, session: Session
) -> None:
    dataset = make_dataset(session)
    for i in range(5):
        make_example(session, dataset, i)
    ids = _ids(session, dataset.id)
    alice, bob = make_user(session), make_user(session)
    _, lead = make_token(session, "lead")
    url = f"/api/v1/datasets/{dataset.name}/examples/bulk"
    body = {"action": "assign", "value": alice.name, "ids": ids[3:]}
    done = client.post(url, json=body, headers=lead)
    assert done.status_code == 200, done.text
    assert done.json()["counts"] == {"matched": 2, "changed": 2, "assigned": 2, "unassigned": 0}
    assert client.post(url, json=body, headers=lead).json()["counts"]["changed"] == 0
    queue = Queue(dataset=dataset)
    # Alice is handed what was assigned to her before the lower ids; Bob never gets it.
    assert [e.id for e in upcoming(session, queue, alice)] == [ids[3], ids[4], *ids[:3]]
    assert [e.id for e in upcoming(session, queue, bob)] == ids[:3]
    first = next_example(session, queue, alice)
    assert first is not None and first.id == ids[3]
    seen_by_bob = []
    while (example := next_example(session, queue, bob)) is not None:
        seen_by_bob.append(example.id)
        example.status = "accepted"
        release(session, bob, example.id)
    assert seen_by_bob == ids[:3]
    # Blank: open to everyone again.
    cleared = client.post(url, json={"action": "assign", "value": "", "ids": ids[4:]}, headers=lead)
    assert cleared.json()["counts"]["unassigned"] == 1
    assert [e.id for e in upcoming(session, queue, bob)] == [ids[4]]


def test_assign_refuses_an_unknown_name_and_an_annotator(
    client: TestClient, session: Session
) -> None:
    dataset = make_dataset(session)
    make_example(session, dataset, 0)
    _, lead = make_token(session, "lead")
    _, annotator = make_token(session, "annotator")
    url = f"/api/v1/datasets/{dataset.name}/examples/bulk"
    unknown = client.post(url, json={"action": "assign", "value": "nobody-here"}, headers=lead)
    assert unknown.status_code == 422 and "nobody-here" in unknown.text
    forbidden = client.post(url, json={"action": "assign", "value": "x"}, headers=annotator)
    assert forbidden.status_code == 403
    assert session.scalars(select(ReviewAssignment)).all() == []


def test_a_collection_wide_assign_for_two_annotators(client: TestClient, session: Session) -> None:
    """The collection API acts on its members across datasets; several names share them."""
    first, second = make_dataset(session), make_dataset(session)
    members = [make_example(session, first, 0), make_example(session, second, 1)]
    outside = make_example(session, first, 2)
    collection = create_collection(session, unique("set"))
    add_items(session, collection, [e.id for e in members])
    alice, bob = make_user(session), make_user(session)
    _, lead = make_token(session, "lead")
    body = {"action": "assign", "value": f"{alice.name}, {bob.name}"}
    done = client.post(
        f"/api/v1/collections/{collection.name}/examples/bulk", json=body, headers=lead
    )
    assert done.status_code == 200, done.text
    assert done.json()["counts"]["assigned"] == 4
    assigned = session.execute(select(ReviewAssignment.example_id, ReviewAssignment.user_id)).all()
    assert {example for example, _ in assigned} == {e.id for e in members}
    assert outside.id not in {example for example, _ in assigned}


def test_score_on_a_selection_scores_only_the_selection(committed: Engine) -> None:
    with transaction() as session:
        dataset = create_dataset(session, unique("pool"))
        for i in range(6):
            make_example(session, dataset, i)
        ids = _ids(session, dataset.id)
        chosen = ids[1:4]
        action = bulk_module.BulkAction(action="score", value="length", ids=chosen)
        matched, counts, job = bulk_module.start_bulk(
            session, make_user(session, "lead"), dataset, action
        )
        assert (matched, counts) == (3, {"matched": 3, "jobs": 1}) and job is not None
        job_id = job.id
    assert execute_job(job_id, inline=True) == "succeeded"
    with transaction() as session:
        finished = session.get(Job, job_id)
        assert finished is not None and finished.kind == "score" and finished.total == 3
        scored = set(
            session.scalars(
                select(Example.id)
                .join(Score, Score.content_hash == Example.content_hash)
                .where(
                    Example.dataset_id == finished.dataset_id,
                    Score.scorer_id == finished.params["scorer_id"],
                )
            )
        )
        assert scored == set(chosen)


def test_score_needs_a_scorer_and_at_most_the_id_limit(
    client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset = make_dataset(session)
    for i in range(3):
        make_example(session, dataset, i)
    _, lead = make_token(session, "lead")
    url = f"/api/v1/datasets/{dataset.name}/examples/bulk"
    no_scorer = client.post(url, json={"action": "score"}, headers=lead)
    assert no_scorer.status_code == 422 and "scorer" in no_scorer.text
    unknown = client.post(url, json={"action": "score", "value": "no-such-scorer"}, headers=lead)
    assert unknown.status_code in (404, 422) and "no-such-scorer" in unknown.text
    monkeypatch.setattr(bulk_module, "MAX_IDS", 2)
    too_many = client.post(url, json={"action": "score", "value": "length"}, headers=lead)
    assert too_many.status_code == 422 and "at most 2" in too_many.text
