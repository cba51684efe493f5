"""Renaming and deleting a dataset (issue 13): what depends on it is shown first, recipes
follow a rename, snapshots keep their copies, experiments and unfinished jobs stop a deletion,
and a large dataset goes as a job."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from app.collections.service import add_items, create_collection, create_snapshot
from app.datasets import removal
from app.datasets.service import create_dataset
from app.entrypoints.domains import load_every_job_kind
from app.models import Collection, Dataset, Example, Experiment, Job, Selection, SnapshotItem
from app.platform.db import transaction
from app.platform.errors import Conflict, InvalidInput
from app.platform.jobs.dispatch import create_job
from app.platform.jobs.runner import execute_job
from tests.factories import make_dataset, make_example, make_token, make_user, unique
from tests.web.test_pages import sign_in

load_every_job_kind()


def _used(session: Session) -> tuple[Dataset, str]:
    """A dataset with 4 examples, 2 in a collection that has a snapshot and a recipe naming it."""
    dataset = make_dataset(session)
    examples = [make_example(session, dataset, i) for i in range(4)]
    collection = create_collection(session, unique("set"))
    add_items(session, collection, [e.id for e in examples[:2]])
    create_snapshot(session, collection)
    collection.recipes = [{"dataset": dataset.name, "method": "random", "budget": 2}]
    session.add(Selection(name=unique("recipe"), method="random", dataset_id=dataset.id))
    session.flush()
    return dataset, collection.name


def test_dependents_name_everything_a_deletion_touches(session: Session) -> None:
    dataset, collection = _used(session)
    found = removal.dependents(session, dataset)
    assert found.examples == 4
    assert found.collections == [(collection, 2)]
    assert [(n, c) for _, n, c in found.snapshots] == [(collection, 2)]
    assert len(found.recipes) == 1 and found.collection_recipes == [collection]
    assert found.blockers == []


def test_a_rename_is_checked_and_collection_recipes_follow(session: Session) -> None:
    dataset, collection = _used(session)
    other = make_dataset(session)
    with pytest.raises(Conflict, match="exists already"):
        removal.rename_dataset(session, dataset, other.name)
    with pytest.raises(InvalidInput, match="without '/'"):
        removal.rename_dataset(session, dataset, "a/b")
    new = unique("renamed")
    removal.rename_dataset(session, dataset, f"  {new} ")
    assert dataset.name == new
    assert removal.dependents(session, dataset).collection_recipes == [collection]


def test_delete_keeps_snapshots_and_drops_the_rest(session: Session) -> None:
    dataset, collection = _used(session)
    ids = list(session.scalars(select(Example.id).where(Example.dataset_id == dataset.id)))
    [(snapshot_id, _, _)] = removal.dependents(session, dataset).snapshots
    assert removal.delete_dataset(session, dataset, None) is None  # done at once
    session.expire_all()
    assert session.scalar(select(func.count()).where(Example.id.in_(ids))) == 0
    assert session.scalar(select(func.count()).where(Selection.dataset_id == dataset.id)) == 0
    frozen = session.scalars(select(SnapshotItem).where(SnapshotItem.snapshot_id == snapshot_id))
    assert [item.example_id for item in frozen] == [None, None]  # the copies stay
    [kept] = session.scalars(select(Collection).where(Collection.name == collection))
    assert kept.recipes == []  # its recipe read the deleted dataset


def test_an_experiment_or_an_unfinished_job_stops_a_deletion(session: Session) -> None:
    dataset, _ = _used(session)
    create_job(session, "embed", {}, queue="cpu", dataset_id=dataset.id)
    session.add(Experiment(name=unique("exp"), dataset_id=dataset.id, budget=2, base_model="m"))
    session.flush()
    with pytest.raises(Conflict) as refused:
        removal.delete_dataset(session, dataset, None)
    assert "experiments use it" in refused.value.message
    assert "jobs on it are not finished" in refused.value.message
    assert session.get(Dataset, dataset.id) is not None


def test_a_large_dataset_goes_as_a_job_and_its_name_is_free_at_once(
    committed: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(removal, "INLINE_LIMIT", 3)
    monkeypatch.setattr(removal, "DELETE_BATCH", 2)
    name = unique("big")
    with transaction() as session:
        dataset = create_dataset(session, name)
        for i in range(5):
            make_example(session, dataset, i)
        job = removal.delete_dataset(session, dataset, make_user(session, "lead"))
        assert job is not None
        job_id, dataset_id = job.id, dataset.id
        create_dataset(session, name)  # the name is free while the job runs
    assert execute_job(job_id) == "succeeded"
    assert execute_job(job_id) in ("succeeded", "skipped")  # twice is harmless
    with transaction() as session:
        finished = session.get(Job, job_id)
        assert finished is not None and finished.counts == {"deleted": 5, "dataset": name}
        assert session.get(Dataset, dataset_id) is None
        assert session.scalar(select(func.count()).where(Example.dataset_id == dataset_id)) == 0


def test_rename_and_delete_over_the_api_and_the_page(client: TestClient, session: Session) -> None:
    dataset, collection = _used(session)
    _, lead = make_token(session, "lead")
    _, annotator = make_token(session, "annotator")
    url = f"/api/v1/datasets/{dataset.name}"
    assert client.patch(url, json={"name": "x"}, headers=annotator).status_code == 403
    new = unique("api")
    renamed = client.patch(url, json={"name": new, "description": "d"}, headers=lead)
    assert renamed.status_code == 200 and renamed.json()["name"] == new
    found = client.get(f"/api/v1/datasets/{new}/dependents", headers=lead).json()
    assert found["collections"] == [{"name": collection, "items": 2}]
    token = sign_in(client, make_user(session, "lead"))
    page = client.get(f"/datasets/{new}/manage")
    assert page.status_code == 200 and collection in page.text and "4</b> examples" in page.text
    wrong = client.post(f"/datasets/{new}/delete", data={"csrf_token": token, "confirm": "no"})
    assert wrong.status_code == 422 and "type the dataset" in wrong.text
    done = client.post(
        f"/datasets/{new}/delete",
        data={"csrf_token": token, "confirm": new},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == "/datasets"
    assert client.get(f"/api/v1/datasets/{new}", headers=lead).status_code == 404
