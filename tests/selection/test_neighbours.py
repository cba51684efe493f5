"""Facility location's sparse similarity from pgvector's HNSW index: the neighbour sets come from
the index (its plan uses it), only the pool's candidates are neighbours, and through the spec
a k as large as the pool picks what the exact similarity picks, while a small k stays within
the bound that dropping similarities allows."""

from __future__ import annotations

import math

import numpy as np
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from app.collections.service import create_collection
from app.entrypoints.cli import cli
from app.models import Embedding
from app.platform.db import transaction
from app.platform.vectors.index import vector_index_name
from app.platform.vectors.models import DEFAULT_MODEL
from app.selection import diversity, service
from app.selection.neighbours import _statement, has_index, index_neighbours
from app.selection.service import SelectionSpec
from tests.factories import make_dataset, make_example, make_user

DIM = 384  # the bundled model's: its HNSW index exists from migration 0009


def _clustered(seed: int, n: int, clusters: int = 12) -> np.ndarray:
    """Unit vectors around a few random centres, as embeddings of related texts fall."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, DIM))
    x = centres[rng.integers(clusters, size=n)] + 0.9 * rng.normal(size=(n, DIM))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _store(session: Session, name: str, x: np.ndarray, offset: int = 0) -> list[int]:
    dataset = make_dataset(session, name)
    ids = []
    for i, vector in enumerate(x):
        example = make_example(session, dataset, offset + i)
        ids.append(example.id)
        session.add(
            Embedding(content_hash=example.content_hash, model=DEFAULT_MODEL, dim=DIM,
                      vector=vector.tobytes())
        )  # fmt: skip
    session.flush()
    return ids


def _hashes(session: Session, ids: list[int]) -> list[str]:
    rows = dict(session.execute(text("SELECT id, content_hash FROM examples")).all())
    return [rows[i] for i in ids]


def test_the_neighbours_come_from_the_index_and_only_from_the_pool(session: Session) -> None:
    x = _clustered(0, 80)
    ids = _store(session, "pool", x)
    # Another dataset's vectors, each nearly a copy of a pool vector: never a neighbour here.
    _store(session, "other", x + 0.01 * np.float32(1.0), offset=1000)
    assert has_index(session, DEFAULT_MODEL, DIM)
    hashes = _hashes(session, ids)
    near = index_neighbours(session, hashes, DEFAULT_MODEL, DIM, 6)
    assert near.shape == (80, 6) and (near[:, 0] == np.arange(80)).all()  # itself first
    assert ((near >= 0) & (near < 80)).all()  # every one found, every one in the pool
    exact = np.argsort(-(x @ x.T), axis=1, kind="stable")[:, :6]
    recall = np.mean([len(set(a) & set(b)) / 6 for a, b in zip(near, exact, strict=True)])
    assert recall >= 0.95
    everyone = index_neighbours(session, hashes, DEFAULT_MODEL, DIM, 80)
    assert all(sorted(row) == list(range(80)) for row in everyone.tolist())

    # The statement's plan can use the HNSW index (its expression and predicate match).
    session.execute(text("SET LOCAL enable_seqscan = off"))
    session.execute(text("CREATE TEMPORARY TABLE knn_plan (content_hash varchar(64), pos int)"))
    statement = _statement("knn_plan", DEFAULT_MODEL, DIM, 6).bindparams(lo=0, hi=10)
    compiled = statement.compile(
        dialect=session.get_bind().dialect, compile_kwargs={"literal_binds": True}
    )
    plan = session.execute(text(f"EXPLAIN {compiled}")).scalars().all()
    assert any(vector_index_name(DEFAULT_MODEL) in line for line in plan), plan


def _objective(x: np.ndarray, picks: list[int]) -> float:
    return diversity.exact_coverage(x, picks)


def test_through_the_spec_a_large_k_is_exact_and_a_small_k_within_its_bound(
    session: Session,
) -> None:
    x = _clustered(1, 120)
    ids = _store(session, "diverse", x)
    position = {example_id: k for k, example_id in enumerate(ids)}
    exact_spec = SelectionSpec("diverse", "facility-location", budget=12)
    exact = service.select_ids(session, exact_spec)
    assert "note" not in service.preview(session, exact_spec)

    every = SelectionSpec("diverse", "facility-location", budget=12, neighbours=120)
    assert service.select_ids(session, every) == exact
    note = service.preview(session, every).get("note", "")
    assert "approximates" in note and "HNSW" in note

    few = SelectionSpec("diverse", "facility-location", budget=12, neighbours=4)
    sparse = [position[i] for i in service.select_ids(session, few)]
    exact_picks = [position[i] for i in exact]
    fl_exact, fl_sparse = _objective(x, exact_picks), _objective(x, sparse)
    # Bound: each point loses at most tau_i, its best similarity outside its kept set, so
    # FL(sparse picks) >= (1 - 1/e) (FL(exact picks) - sum tau).
    hashes = _hashes(session, ids)
    kept = index_neighbours(session, hashes, DEFAULT_MODEL, DIM, 4)
    sims = np.clip((x @ x.T).astype(np.float64), 0, 1)
    outside = sims.copy()
    for i, row in enumerate(kept):
        outside[i, row[row >= 0]] = 0.0
    tau = outside.max(axis=1).sum()
    assert fl_sparse >= (1 - 1 / math.e) * (fl_exact - tau)
    # And on these clustered vectors, as stated in the README: within 5% of the exact picks.
    assert 1 - fl_sparse / fl_exact < 0.05
    assert sparse != exact_picks  # a small k does approximate


def test_the_command_says_that_it_approximates(embedded: Engine) -> None:
    with transaction() as session:
        _store(session, "diverse", _clustered(2, 30))
    args = ["select", "--dataset", "diverse", "--method", "facility-location", "--budget", "5",
            "--neighbours", "4", "--into", "spread"]  # fmt: skip
    shown = CliRunner().invoke(cli, [*args, "--preview"])
    assert shown.exit_code == 0 and "5 of 30 candidates" in shown.output, shown.output
    assert "approximates" in shown.output and "HNSW" in shown.output
    done = CliRunner().invoke(cli, [*args, "--wait"])
    assert done.exit_code == 0 and "added 5" in done.output, done.output
    assert "approximates" in done.output


def test_without_an_index_the_neighbours_come_from_an_exact_search(session: Session) -> None:
    x = _clustered(3, 50)[:, :16].copy()
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    dataset = make_dataset(session, "small")
    ids = []
    for i, vector in enumerate(x):
        example = make_example(session, dataset, i)
        ids.append(example.id)
        session.add(
            Embedding(content_hash=example.content_hash, model="tiny-embedder", dim=16,
                      vector=vector.tobytes())
        )  # fmt: skip
    session.flush()
    assert not has_index(session, "tiny-embedder", 16)
    spec = SelectionSpec(
        "small", "facility-location", budget=7, neighbours=4, embedding_model="tiny-embedder"
    )
    expected = diversity.facility_location(diversity.similarity(x, neighbours=4), 7).picks
    assert service.select_ids(session, spec) == [ids[k] for k in expected]
    assert "an exact search" in service.preview(session, spec).get("note", "")


def test_a_selection_reports_how_far_the_index_neighbours_have_gone(session: Session) -> None:
    _store(session, "wide", _clustered(4, 600))
    collection = create_collection(
        session, "spread", target_size=10, user=make_user(session, "lead")
    )
    heard: list[tuple[int, int]] = []
    spec = SelectionSpec("wide", "facility-location", budget=10, neighbours=4)
    counts = service.select_into(
        session, collection, spec, progress=lambda done, total: heard.append((done, total))
    )
    assert counts["added"] == 10
    assert heard == [(256, 600), (512, 600), (600, 600)]  # a step per statement of 256
