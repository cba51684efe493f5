"""What the collection dashboard reads: the embedding map's projection and pool sample, and
score distributions on ranges that the recipe leaves open."""

from __future__ import annotations

import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.collections import distributions, service
from app.collections.embedding_map import EXACT_SVD_LIMIT, principal_components
from app.datasets.service import update_example
from app.models import Example
from app.platform.sampling import sample_pool
from app.scoring.chunks import upsert_scores
from app.scoring.service import choose_scorer, get_or_create_scorer
from tests.factories import make_dataset, make_example, unique


def planted(n: int, dims: int, seed: int = 3) -> np.ndarray:
    """Points spread along two planted directions, with a little noise."""
    rng = np.random.default_rng(seed)
    axes = np.linalg.qr(rng.standard_normal((dims, 2)))[0].T
    weights = rng.standard_normal((n, 2)) * np.array([10.0, 4.0])
    return weights @ axes + 0.01 * rng.standard_normal((n, dims)) + 5.0


def test_the_map_keeps_the_two_main_directions() -> None:
    for dims in (64, EXACT_SVD_LIMIT + 88):  # the exact SVD and the randomised range finder
        points = planted(300, dims)
        coords = principal_components(points)
        centred = points - points.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        reference = centred @ vt[:2].T
        for k in range(2):
            # Same axis up to sign; the variance along each is the planted one.
            assert abs(np.corrcoef(coords[:, k], reference[:, k])[0, 1]) > 0.9999
        assert coords[:, 0].std() > 2 * coords[:, 1].std()
        assert np.array_equal(coords, principal_components(points))  # the same picture again
        flipped = principal_components(-points)
        assert np.allclose(flipped, coords)  # signs are fixed by the data, not by the solver


def test_the_pool_sample_draws_from_its_datasets_only(session: Session) -> None:
    pool = make_dataset(session)
    other = make_dataset(session)
    examples = [make_example(session, pool, i) for i in range(40)]
    foreign = [make_example(session, other, 100 + i) for i in range(5)]
    gone = [e.id for e in examples[::3]]  # ids with gaps
    session.execute(delete(Example).where(Example.id.in_(gone)))
    kept = {e.id: e.content_hash for e in examples if e.id not in gone}
    sample = sample_pool(session, [pool], 10, seed=1)
    assert len(sample) == 10
    assert all(kept[i] == h for i, h in sample.items())
    assert sample == sample_pool(session, [pool], 10, seed=1)
    assert sample_pool(session, [pool], 1000) == kept  # asking for more gives everything there is
    assert not set(sample_pool(session, [pool, other], 100)) & set(gone)
    assert {e.id for e in foreign} <= set(sample_pool(session, [pool, other], 100))
    assert sample_pool(session, [], 10) == {}


def test_open_ranges_bin_between_the_values_seen(session: Session) -> None:
    dataset = make_dataset(session)
    examples = [make_example(session, dataset, i) for i in range(5)]
    scorer = get_or_create_scorer(session, choose_scorer(session, "length"))  # low 0, no high
    upsert_scores(
        session,
        [
            {"content_hash": e.content_hash, "scorer_id": scorer.id, "value": v,
             "state": "ok", "raw": None, "details": {}}
            for e, v in zip(examples, [10.0, 20.0, 30.0, 40.0, 100.0], strict=True)
        ],
    )  # fmt: skip
    collection = service.create_collection(session, unique("set"), target_size=5)
    service.add_items(session, collection, [examples[4].id])
    [comparison] = distributions.score_comparison(session, collection, [dataset], bins=10)
    assert (comparison["bins"][0]["low"], comparison["bins"][-1]["high"]) == (0.0, 100.0)
    assert [b["pool"] for b in comparison["bins"]] == [0, 1, 1, 1, 1, 0, 0, 0, 0, 1]
    assert [b["selected"] for b in comparison["bins"]] == [0] * 9 + [1]
    assert comparison["pool"]["mean"] == 40.0 and comparison["selected"]["count"] == 1
    assert comparison["top"] == 1.0  # the collection's one example is all of it
    assert comparison["stale"] == 0
    # An edited member's score no longer counts, and the chart says so.
    service.add_items(session, collection, [examples[3].id])
    update_example(session, examples[3].id, 1, {"output": "rewritten"}, None)
    [comparison] = distributions.score_comparison(session, collection, [dataset], bins=10)
    assert comparison["stale"] == 1 and comparison["selected"]["count"] == 1


def test_a_sample_is_uniform_over_interleaved_datasets(session: Session) -> None:
    first, other, second = make_dataset(session), make_dataset(session), make_dataset(session)
    for i in range(40):  # `first` and `other` imported side by side: their ids interleave
        make_example(session, first, 1000 + i)
        make_example(session, other, 2000 + i)
    for i in range(40):
        make_example(session, second, 3000 + i)
    drawn_first = 0
    for seed in range(40):
        sample = sample_pool(session, [first, second], 20, seed=seed)
        assert len(sample) == 20
        datasets = session.scalars(select(Example.dataset_id).where(Example.id.in_(sample)))
        found = list(datasets)
        assert other.id not in found
        drawn_first += found.count(first.id)
    assert 0.42 < drawn_first / 800 < 0.58  # half the pool is `first`


def test_a_large_pool_is_drawn_from_a_sample(session: Session) -> None:
    dataset = make_dataset(session)
    examples = [make_example(session, dataset, i) for i in range(30)]
    scorer = get_or_create_scorer(session, choose_scorer(session, "lima"))
    upsert_scores(
        session,
        [
            {"content_hash": e.content_hash, "scorer_id": scorer.id, "value": (i % 2) * 1.0,
             "state": "ok", "raw": None, "details": {}}
            for i, e in enumerate(examples[:20])
        ],
    )  # fmt: skip
    collection = service.create_collection(session, unique("set"), target_size=5)
    service.add_items(session, collection, [examples[1].id])
    exact = distributions.score_comparison(session, collection, [dataset], bins=2)[0]
    assert exact["sampled"] is None and exact["pool"]["count"] == 20
    assert [b["pool"] for b in exact["bins"]] == [10, 10]
    sampled = distributions.score_comparison(session, collection, [dataset], bins=2, sample=12)[0]
    assert sampled["sampled"] == 12
    assert sampled["pool"]["count"] == sum(b["pool"] for b in sampled["bins"]) <= 12
    assert sampled["selected"]["count"] == 1 and sampled["bins"][1]["selected"] == 1
