"""The embedding and near-duplicate API: starting jobs, roles, and reading clusters."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.models import Job
from app.selection.dedup import replace_clusters
from tests.factories import make_dataset, make_example, make_token


def test_starting_embedding_and_dedup_jobs(client: TestClient, session: Session) -> None:

    dataset = make_dataset(session)
    make_example(session, dataset, 1)
    _, lead = make_token(session, "lead")
    _, annotator = make_token(session, "annotator")

    url = f"/api/v1/datasets/{dataset.name}"
    assert client.post(f"{url}/embeddings", json={}, headers=annotator).status_code == 403
    response = client.post(f"{url}/embeddings", json={}, headers=lead)
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["kind"] == "embed" and job["params"] == {"model": "all-MiniLM-L6-v2"}
    assert job["queue"] in ("cpu", "gpu")
    assert session.get(Job, job["id"]) is not None

    bad = client.post(f"{url}/embeddings", json={"model": "/nowhere/model"}, headers=lead)
    assert bad.status_code == 422

    response = client.post(f"{url}/duplicates", json={"method": "minhash"}, headers=lead)
    assert response.status_code == 202, response.text
    assert response.json()["params"]["threshold"] == 0.8
    missing = client.post(f"{url}/duplicates", json={"method": "embedding"}, headers=lead)
    assert missing.status_code == 422 and "sift embed" in missing.text
    assert (
        client.post(f"{url}/duplicates", json={"method": "fuzzy"}, headers=lead).status_code == 422
    )
    assert (
        client.post(
            "/api/v1/datasets/absent/duplicates", json={"method": "exact"}, headers=lead
        ).status_code
        == 404
    )


def test_reading_clusters_page_by_page(client: TestClient, session: Session) -> None:

    dataset = make_dataset(session)
    ids = [make_example(session, dataset, i).id for i in range(5)]
    replace_clusters(session, dataset.id, "exact", {}, [ids[:2], ids[2:5]])
    _, annotator = make_token(session, "annotator")

    url = f"/api/v1/datasets/{dataset.name}/duplicates"
    assert client.get(url).status_code == 401
    first = client.get(url, params={"method": "exact", "limit": 1}, headers=annotator).json()
    [cluster] = first["clusters"]
    assert cluster["member_ids"] == ids[:2] and cluster["representative_id"] == ids[0]
    second = client.get(
        url, params={"method": "exact", "limit": 1, "after": first["next_after"]}, headers=annotator
    ).json()
    assert second["clusters"][0]["member_ids"] == ids[2:5]
    assert second["clusters"][0]["size"] == 3
    assert client.get(url, params={"method": "minhash"}, headers=annotator).json() == {
        "clusters": [],
        "next_after": None,
    }


def test_the_examples_list_keeps_one_per_cluster(client: TestClient, session: Session) -> None:
    from app.models import DuplicateCluster, DuplicateMember

    _, lead = make_token(session, "lead")
    dataset = make_dataset(session)
    examples = [make_example(session, dataset, i) for i in range(4)]
    cluster = DuplicateCluster(
        dataset_id=dataset.id, method="minhash", params={}, representative_id=examples[1].id, size=3
    )
    session.add(cluster)
    session.flush()
    session.add_all(DuplicateMember(cluster_id=cluster.id, example_id=e.id) for e in examples[:3])
    session.flush()
    url = f"/api/v1/datasets/{dataset.name}/examples"
    listed = client.get(url, params={"one_per_cluster": "minhash"}, headers=lead).json()
    assert [item["id"] for item in listed["items"]] == [examples[1].id, examples[3].id]
    assert len(client.get(url, headers=lead).json()["items"]) == 4
    bad = client.get(url, params={"one_per_cluster": "fuzzy"}, headers=lead)
    assert bad.status_code == 422 and "method" in bad.text
