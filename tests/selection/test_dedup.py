"""Near-duplicates: the methods on their own, stored clusters, and changed copies of real data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.datasets.importer import import_file
from app.datasets.service import content_hash, parse_alpaca
from app.models import Dataset, DuplicateCluster, Example, Score, Scorer
from app.platform.errors import InvalidInput
from app.platform.jobs.dispatch import run_jobs_here
from app.platform.vectors.models import DEFAULT_MODEL, load_embedder
from app.platform.vectors.store import store_embeddings
from app.scoring.service import ExampleText
from app.selection.clustering import (
    UnionFind,
    exact_clusters,
    find_clusters,
    minhash_clusters,
    normalise_text,
)
from app.selection.dedup import (
    list_clusters,
    replace_clusters,
    representative,
    representative_only,
    run_dedup,
    start_dedup_job,
)
from app.selection.embed_job import embedding_text
from tests.conftest import DATA
from tests.factories import make_dataset, make_example, write_json

# ---------------------------------------------------------------- the pure part


def test_normalising_folds_case_and_whitespace() -> None:
    assert normalise_text("  Hello,\n\tWORLD  again ") == "hello, world again"


def test_union_find_joins_chains() -> None:
    sets = UnionFind(6)
    sets.union(4, 1)
    sets.union(1, 3)
    sets.union(5, 0)
    assert sets.groups() == [[0, 5], [1, 3, 4]]


def test_exact_and_minhash_clusters() -> None:
    long = " ".join(f"word{i}" for i in range(60))
    texts = [
        "Name three primary colours.",
        "name  three PRIMARY colours.\n",
        long,
        long.replace("word30", "WORD30").replace(" word31", "\n\nword31"),
        long.replace("word59", "changed"),  # 1 of 56 shingles differs: Jaccard 55/57
        "Something else entirely, with more words than a shingle.",
    ]
    assert exact_clusters(texts) == [[0, 1], [2, 3]]
    assert find_clusters("minhash", texts) == [[0, 1], [2, 3, 4]]
    assert minhash_clusters(texts, threshold=0.99) == [[0, 1], [2, 3]]


def test_embedding_clusters_compare_cosine_with_the_threshold() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(size=(4, 16)).astype(np.float32)
    near = base[1] + 0.05 * rng.normal(size=16).astype(np.float32)
    vectors = np.vstack([base, near])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    assert find_clusters("embedding", vectors=vectors) == [[1, 4]]
    assert find_clusters("embedding", vectors=vectors, threshold=0.9999) == []
    with pytest.raises(InvalidInput):
        find_clusters("fuzzy", ["a"])


def test_the_representative_is_the_best_scored_else_the_lowest_id() -> None:
    assert representative([7, 3, 9], {}) == 3
    assert representative([7, 3, 9], {9: 4.5, 7: 3.0}) == 9
    assert representative([7, 3, 9], {9: 4.5, 7: 4.5}) == 7


# ---------------------------------------------------------------- stored clusters


def test_stored_clusters_replace_the_old_ones_and_filter_one_per_cluster(
    session: Session,
) -> None:
    dataset = make_dataset(session)
    ids = [make_example(session, dataset, i).id for i in range(6)]
    replace_clusters(session, dataset.id, "minhash", {"threshold": 0.8}, [ids[:2], ids[2:5]])
    replace_clusters(session, dataset.id, "minhash", {"threshold": 0.8}, [ids[:3], ids[3:5]])
    replace_clusters(session, dataset.id, "exact", {}, [ids[4:6]])
    clusters = list_clusters(session, dataset, "minhash")
    assert [(c.member_ids, c.representative_id, c.size) for c in clusters] == [
        (ids[:3], ids[0], 3),
        (ids[3:5], ids[3], 2),
    ]
    kept = session.scalars(
        select(Example.id)
        .where(
            Example.dataset_id == dataset.id, representative_only(session, dataset.id, "minhash")
        )
        .order_by(Example.id)
    ).all()
    assert kept == [ids[0], ids[3], ids[5]]
    assert len(list_clusters(session, dataset)) == 3
    page = list_clusters(session, dataset, "minhash", limit=1, after=clusters[0].id)
    assert [c.id for c in page] == [clusters[1].id]


def test_a_dedup_job_prefers_the_best_scored_member(session: Session) -> None:
    dataset = make_dataset(session)
    answer = {"output": "Red, yellow and blue."}
    a = make_example(session, dataset, record={"instruction": "Name three colours."} | answer)
    b = make_example(session, dataset, record={"instruction": "NAME three colours."} | answer)
    scorer = Scorer(name="quality-test", version=1, key="k" * 64, kind="heuristic", params={})
    session.add(scorer)
    session.flush()
    session.add_all(
        [
            Score(content_hash=a.content_hash, scorer_id=scorer.id, value=2.0, details={}),
            Score(content_hash=b.content_hash, scorer_id=scorer.id, value=5.0, details={}),
        ]
    )
    session.flush()
    run_jobs_here(session)
    job = start_dedup_job(session, dataset, "exact", prefer="quality-test")
    counts = run_dedup(session, job)
    assert counts == {"examples": 2, "clusters": 1, "duplicates": 1}
    [cluster] = list_clusters(session, dataset, "exact")
    assert cluster.representative_id == b.id and cluster.member_ids == [a.id, b.id]


def test_bad_requests_are_refused(session: Session) -> None:
    dataset = make_dataset(session)
    make_example(session, dataset, 1)
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("fuzzy", {}, "method"),
        ("exact", {"threshold": 0.5}, "threshold"),
        ("minhash", {"threshold": 1.5}, "threshold"),
        ("exact", {"model": "x"}, "model"),
    ]
    for method, options, field in cases:
        with pytest.raises(InvalidInput) as raised:
            run_jobs_here(session)
            start_dedup_job(session, dataset, method, **options)
        assert raised.value.detail["field"] == field
    with pytest.raises(InvalidInput, match="sift embed"):
        run_jobs_here(session)
        start_dedup_job(session, dataset, "embedding")


# ---------------------------------------------------------------- real data

ORIGINALS = 1500
COPIES = 150
EMBEDDED = 60  # of the originals (with their copies): MiniLM on two CPUs takes seconds


def _changed(record: dict[str, Any], k: int) -> dict[str, Any]:
    """A copy that differs from the record only in case and whitespace."""
    instruction, output = record["instruction"], record["output"]
    first, _, rest = instruction.partition(" ")
    change = k % 4
    if change == 0:
        instruction = f"{first.upper()} {rest}".strip()
    elif change == 1:
        output = output.replace(" ", "  ") + "\n"
    elif change == 2:
        instruction = instruction.lower().replace(" ", "\n", 1)
    else:
        output = output.upper().replace(". ", ".\n\n")
    return record | {"instruction": instruction, "output": output}


@pytest.fixture(scope="module")
def real_records() -> tuple[list[dict[str, Any]], list[tuple[int, dict[str, Any]]]]:
    """The first records of AlpaGasus' random 9k, and changed copies of some: (index, copy)."""
    path = DATA / "alpagasus" / "random_9k.json"
    if not path.is_file():
        pytest.skip(f"the shared data file is absent ({path})")
    records = json.loads(path.read_text(encoding="utf-8"))[:ORIGINALS]
    copies = []
    for k, i in enumerate(range(0, ORIGINALS, ORIGINALS // COPIES)):
        copy = _changed(records[i], k)
        if _hash(copy) != _hash(records[i]):  # a change the content hash does not already undo
            copies.append((i, copy))
    return records, copies


@pytest.fixture(scope="module")
def vectors(
    real_records: tuple[list[dict[str, Any]], list[tuple[int, dict[str, Any]]]],
) -> dict[str, np.ndarray]:
    """Embeddings of the embedded originals and their copies, computed once for both backends."""
    records, copies = real_records
    chosen = records[:EMBEDDED] + [c for i, c in copies if i < EMBEDDED]
    texts = [_text(r) for r in chosen]
    return dict(zip(texts, load_embedder(None).encode(texts), strict=True))


def _hash(record: dict[str, Any]) -> str:
    return content_hash(parse_alpaca(record).messages)


def _text(record: dict[str, Any]) -> str:
    return embedding_text(
        ExampleText.of([], record["instruction"], record["input"], record["output"])
    )


def _import(
    session: Session, tmp_path: Path, records: list[dict[str, Any]]
) -> tuple[Dataset, dict[str, int]]:
    dataset = make_dataset(session)
    summary = import_file(
        session, dataset, write_json(tmp_path / "pool.json", records), fmt="alpaca"
    )
    assert summary.invalid == 0
    rows = session.execute(
        select(Example.content_hash, Example.id).where(Example.dataset_id == dataset.id)
    )
    return dataset, {h: example_id for h, example_id in rows}


def _cluster_of(session: Session, dataset: Dataset, method: str) -> dict[int, int]:
    """example id -> cluster id, for every clustered example."""
    return {
        example_id: cluster.id
        for cluster in list_clusters(session, dataset, method, limit=10_000)
        for example_id in cluster.member_ids
    }


@pytest.mark.parametrize("method", ["exact", "minhash"])
def test_every_changed_copy_of_real_data_is_found(
    session: Session,
    tmp_path: Path,
    method: str,
    real_records: tuple[list[dict[str, Any]], list[tuple[int, dict[str, Any]]]],
) -> None:
    records, copies = real_records
    assert len(copies) >= COPIES * 0.9
    dataset, ids = _import(session, tmp_path, records + [c for _, c in copies])
    assert all(_hash(c) in ids for _, c in copies)  # the copies are rows of their own
    run_jobs_here(session)
    job = start_dedup_job(session, dataset, method)
    counts = run_dedup(session, job)
    assert counts["examples"] == len(ids)
    cluster_of = _cluster_of(session, dataset, method)
    for i, copy in copies:
        original, changed = ids[_hash(records[i])], ids[_hash(copy)]
        assert changed in cluster_of, f"copy of record {i} not found by {method}"
        assert cluster_of[changed] == cluster_of[original]
    # One per cluster keeps the original (the lower id) and drops its copy.
    kept = set(
        session.scalars(
            select(Example.id).where(
                Example.dataset_id == dataset.id, representative_only(session, dataset.id, method)
            )
        )
    )
    assert all(ids[_hash(records[i])] in kept and ids[_hash(c)] not in kept for i, c in copies)
    # Run again: the same clusters, nothing doubled.
    before = sorted(tuple(c.member_ids) for c in list_clusters(session, dataset, method, 10_000))
    run_jobs_here(session)
    run_dedup(session, start_dedup_job(session, dataset, method))
    after = sorted(tuple(c.member_ids) for c in list_clusters(session, dataset, method, 10_000))
    assert before == after


def test_embedding_cosine_finds_the_changed_copies_of_real_data(
    session: Session,
    tmp_path: Path,
    real_records: tuple[list[dict[str, Any]], list[tuple[int, dict[str, Any]]]],
    vectors: dict[str, np.ndarray],
) -> None:
    records, copies = real_records
    chosen = [(i, c) for i, c in copies if i < EMBEDDED]
    assert chosen
    pool = records[:EMBEDDED] + [c for _, c in chosen]
    dataset, ids = _import(session, tmp_path, pool)
    store_embeddings(
        session,
        [_hash(r) for r in pool],
        DEFAULT_MODEL,
        np.stack([vectors[_text(r)] for r in pool]),
    )
    run_jobs_here(session)
    run_dedup(session, start_dedup_job(session, dataset, "embedding"))
    cluster_of = _cluster_of(session, dataset, "embedding")
    for i, copy in chosen:
        assert cluster_of.get(ids[_hash(copy)]) == cluster_of[ids[_hash(records[i])]]
    stored = session.scalars(
        select(DuplicateCluster).where(DuplicateCluster.dataset_id == dataset.id)
    ).all()
    assert all(c.params == {"threshold": 0.95, "model": DEFAULT_MODEL} for c in stored)
