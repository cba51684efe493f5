"""k-center greedy and facility location (with QDIT's quality term) pick, in order, what a naive
greedy written here picks: random vectors, planted duplicates, ties, budgets above the pool;
and through the selection spec, from what a collection already holds."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sqlalchemy.orm import Session

from app.collections.service import add_items, create_collection
from app.models import Embedding, Example
from app.platform.errors import InvalidInput
from app.platform.vectors.models import DEFAULT_MODEL
from app.scoring.chunks import upsert_scores
from app.scoring.service import choose_scorer, get_or_create_scorer
from app.selection import diversity, service
from app.selection.diversity import SCALE, facility_location, k_center, plain_greedy, similarity
from app.selection.service import SelectionSpec
from tests.factories import make_dataset, make_example


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _planted(seed: int, n: int = 120, d: int = 8) -> np.ndarray:
    """Random unit vectors with duplicates planted: rows 7, n/3 and n-1 copy row 3, n/2 row 11."""
    x = _unit(np.random.default_rng(seed), n, d)
    x[[7, n // 3, n - 1]] = x[3]
    x[n // 2] = x[11]
    return x


def naive_k_center(x: np.ndarray, budget: int, first: int, held: list[np.ndarray]) -> list[int]:
    """MoDS's loop, one point at a time: the farthest from every center, the first on a tie."""
    points = [[float(v) for v in row] for row in x]
    centers = [[float(v) for v in h] for h in held] or [points[first]]
    chosen = [] if held else [first]
    while len(chosen) < min(budget, len(points)):
        best, best_distance = -1, -1.0
        for i, p in enumerate(points):
            if i in chosen:
                continue
            distance = min(math.dist(p, c) for c in centers)
            if distance > best_distance:  # strictly: an equal one later does not replace it
                best, best_distance = i, distance
        chosen.append(best)
        centers.append(points[best])
    return chosen


def naive_facility(
    x: np.ndarray, budget: int, q: np.ndarray | None = None, alpha: float = 0.0
) -> list[int]:
    """Plain greedy on (1 - alpha) sum_i max(0, max_S sim) + alpha sum q, every gain recomputed."""
    n = len(x)
    sim = np.rint(np.clip((x @ x.T).astype(np.float64), 0, 1) * SCALE)  # sim[j, i]: j covers i
    quality = np.zeros(n) if q is None else q
    cover = np.zeros(n)
    chosen: list[int] = []
    while len(chosen) < min(budget, n):
        best, best_gain = -1, -math.inf
        for j in range(n):
            if j in chosen:
                continue
            rise = sum(max(0.0, sim[j, i] - cover[i]) for i in range(n))
            gain = (1 - alpha) * (rise / SCALE) + alpha * quality[j]
            if gain > best_gain:
                best, best_gain = j, gain
        chosen.append(best)
        cover = np.maximum(cover, sim[best])
    return chosen


@pytest.mark.parametrize("seed", [0, 1])
def test_k_center_is_the_naive_greedy(seed: int) -> None:
    x = _planted(seed)
    assert k_center(x, 30, first=5) == naive_k_center(x, 30, 5, [])
    # Beyond the distinct points: duplicates of centers (0 away) come last, lowest row first.
    everything = k_center(x, 500, first=3)
    assert everything == naive_k_center(x, 500, 3, []) and len(everything) == len(x)
    assert everything[-4:] == [7, 40, 60, 119]
    held = _unit(np.random.default_rng(seed + 10), 3, 8)
    assert k_center(x, 20, held=held) == naive_k_center(x, 20, 0, list(held))


def test_k_center_ties_go_to_the_lowest_row() -> None:
    square = np.array([[1, 0], [0, 1], [-1, 0], [0, -1]], dtype=np.float32)
    # From row 0, rows 1 and 3 are equally far (sqrt 2), row 2 farthest (2): then 1 before 3.
    assert k_center(square, 4, first=0) == [0, 2, 1, 3] == naive_k_center(square, 4, 0, [])
    assert k_center(square, 0) == []
    with pytest.raises(InvalidInput):
        k_center(square, -1)


@pytest.mark.parametrize("seed", [0, 1])
def test_facility_location_is_the_naive_greedy(seed: int) -> None:
    x = _planted(seed, n=60)
    sim = similarity(x)
    expected = naive_facility(x, 25)
    assert facility_location(sim, 25).picks == expected == plain_greedy(sim, 25).picks
    # Budget above the pool: once all is covered every gain is 0, and ties go to the lowest row.
    everything = facility_location(sim, 100).picks
    assert everything == naive_facility(x, 100) and sorted(everything) == list(range(60))
    q = np.random.default_rng(seed).random(60) * 3
    mixed = facility_location(sim, 20, quality=q, alpha=0.3).picks
    assert (
        mixed == naive_facility(x, 20, q, 0.3) == plain_greedy(sim, 20, quality=q, alpha=0.3).picks
    )


def test_qdit_at_its_ends_is_its_two_halves() -> None:
    x = _planted(2, n=60)
    sim = similarity(x)
    q = np.round(np.random.default_rng(3).random(60) * 4) / 2  # many ties
    assert (
        facility_location(sim, 15, quality=q, alpha=0.0).picks == facility_location(sim, 15).picks
    )
    top_q = [int(i) for i in np.argsort(-q, kind="stable")[:15]]  # best first, ties by row
    assert facility_location(sim, 15, quality=q, alpha=1.0).picks == top_q


def test_lazy_greedy_on_the_sparse_similarity_equals_plain_greedy() -> None:
    x = _planted(4, n=300, d=16)
    sparse = similarity(x, neighbours=10)
    assert not sparse.exact
    lazy, plain = facility_location(sparse, 80), plain_greedy(sparse, 80)
    assert lazy.picks == plain.picks and lazy.coverage == plain.coverage
    assert lazy.note is not None and "10 nearest neighbours" in lazy.note
    # The picks are worse on the exact objective than exact picks, but not by much.
    exact = facility_location(similarity(x), 80)
    assert exact.note is None
    loss = 1 - diversity.exact_coverage(x, lazy.picks) / diversity.exact_coverage(x, exact.picks)
    assert 0 <= loss < 0.05


def _embedded_pool(session: Session, x: np.ndarray, scores: list[float] | None = None) -> list[int]:
    dataset = make_dataset(session, "diverse")
    scorer = get_or_create_scorer(session, choose_scorer(session, "length"))
    ids, rows = [], []
    for i, vector in enumerate(x):
        example = make_example(session, dataset, i)
        ids.append(example.id)
        session.add(
            Embedding(content_hash=example.content_hash, model=DEFAULT_MODEL, dim=x.shape[1],
                      vector=vector.astype(np.float32).tobytes())
        )  # fmt: skip
        if scores is not None:
            rows.append({"content_hash": example.content_hash, "scorer_id": scorer.id,
                         "value": scores[i], "state": "ok", "raw": None, "details": {}})  # fmt: skip
    upsert_scores(session, rows)
    session.flush()
    return ids


def test_the_spec_runs_both_from_what_the_collection_holds(session: Session) -> None:
    x = _planted(5, n=40)
    scores = [float(i % 7) for i in range(40)]
    ids = _embedded_pool(session, x, scores)
    # Empty collection: k-center starts from the best-scored example (6.0 first at row 6).
    spec = SelectionSpec("diverse", "k-center", budget=10, scorer="length")
    assert service.select_ids(session, spec) == [ids[k] for k in naive_k_center(x, 10, 6, [])]
    seeded = SelectionSpec("diverse", "k-center", budget=5, seed=3)
    first = int(np.random.default_rng(3).integers(40))
    assert service.select_ids(session, seeded) == [ids[k] for k in naive_k_center(x, 5, first, [])]

    collection = create_collection(session, "diverse-set", target_size=20)
    add_items(session, collection, [ids[0], ids[1]])
    rest = [k for k in range(40) if k not in (0, 1)]
    picked = service.select_ids(session, spec, held=[ids[0], ids[1]])
    expected = naive_k_center(x[rest], 10, 0, [x[0], x[1]])
    assert picked == [ids[rest[k]] for k in expected]

    fl = SelectionSpec("diverse", "facility-location", budget=8)
    assert service.select_ids(session, fl) == [ids[k] for k in naive_facility(x, 8)]
    shown = service.preview(session, fl, held=[ids[0]])
    assert shown["selected"] == 8 and ids[0] not in shown["example_ids"] and "note" not in shown
    counts = service.select_into(session, collection, fl)
    assert counts["added"] == 8

    with pytest.raises(InvalidInput, match="scorer"):
        SelectionSpec("diverse", "facility-location", budget=8, alpha=0.5)
    qdit = SelectionSpec("diverse", "facility-location", budget=8, alpha=1.0, scorer="length")
    best = [ids[int(k)] for k in np.argsort(-np.array(scores), kind="stable")[:8]]
    assert service.select_ids(session, qdit) == best
    example = session.get(Example, ids[0])
    assert example is not None
