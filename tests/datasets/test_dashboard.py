"""The dataset dashboard's distributions on a large pool: exact up to a size, above it drawn
from the uniform sample that the collection dashboard uses too, and said so on the page."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.datasets.dashboard import breakdown
from app.models import Dataset, Example
from app.platform import sampling
from app.scoring.chunks import upsert_scores
from app.scoring.service import (
    choose_scorer,
    dataset_histograms,
    get_or_create_scorer,
    score_histograms,
)
from tests.factories import make_dataset, make_example, make_user
from tests.web.test_pages import sign_in


@pytest.fixture
def scored(session: Session) -> Dataset:
    """30 examples over three sources; lima scores 0 or 1 on 20 of them, 2 parse errors."""
    dataset = make_dataset(session)
    examples = [
        make_example(
            session,
            dataset,
            i,
            source=("alpaca", "dolly", "wikihow")[i % 3],
            category="qa" if i % 2 else None,
            status={0: "accepted", 1: "rejected", 2: "accepted"}.get(i, "candidate"),
        )
        for i in range(30)
    ]
    lima = get_or_create_scorer(session, choose_scorer(session, "lima"))
    rows = [
        {"content_hash": e.content_hash, "scorer_id": lima.id, "raw": None, "details": {}}
        | ({"value": (i % 2) * 1.0, "state": "ok"} if i < 20 else {"value": None, "state": "parse_error"})
        for i, e in enumerate(examples[:22])
    ]  # fmt: skip
    upsert_scores(session, rows)
    return dataset


def drawn(session: Session, dataset: Dataset, size: int) -> list[Example]:
    """The examples of the sample that the dashboard draws (the seed is fixed)."""
    ids = sampling.sample_pool(session, [dataset], size)
    return [session.get_one(Example, i) for i in ids]


def test_histograms_are_exact_up_to_the_threshold(session: Session, scored: Dataset) -> None:
    exact = dataset_histograms(session, scored, 2, sample=12, exact_up_to=30)
    expected = [h | {"values": None, "sampled": None} for h in score_histograms(session, scored, 2)]
    assert exact == expected
    [lima] = exact
    assert lima["states"] == {"ok": 20, "parse_error": 2, "failed": 0, "unscored": 8}
    assert [b["count"] for b in lima["bins"]] == [10, 10] and lima["total"] == 30


def test_histograms_above_the_threshold_are_drawn_from_a_sample(
    session: Session, scored: Dataset
) -> None:
    [lima] = dataset_histograms(session, scored, 2, sample=12, exact_up_to=29)
    assert lima["sampled"] == 12 and lima["total"] == 12
    # Exactly the counts over the sampled examples: their positions tell their scores.
    positions = [int(e.output.rsplit(" ", 1)[1].rstrip(".")) for e in drawn(session, scored, 12)]
    ok = [p % 2 for p in positions if p < 20]
    assert lima["states"] == {
        "ok": len(ok),
        "parse_error": sum(20 <= p < 22 for p in positions),
        "failed": 0,
        "unscored": sum(p >= 22 for p in positions),
    }
    assert [b["count"] for b in lima["bins"]] == [ok.count(0), ok.count(1)]
    assert lima["mean"] == pytest.approx(sum(ok) / len(ok))
    # A sample as large as the dataset is no sample: counted exactly.
    [whole] = dataset_histograms(session, scored, 2, sample=31, exact_up_to=5)
    assert whole["sampled"] is None and whole["states"]["ok"] == 20


def test_counts_above_the_threshold_keep_statuses_exact_and_estimate_the_rest(
    session: Session, scored: Dataset
) -> None:
    exact = breakdown(session, scored, sample=12, exact_up_to=30)
    assert exact.sampled is None and exact.total == 30
    assert dict(exact.source.rows) == {"alpaca": 10, "dolly": 10, "wikihow": 10}
    estimated = breakdown(session, scored, sample=12, exact_up_to=29)
    assert estimated.sampled == 12 and estimated.total == 30
    assert (
        estimated.status.rows
        == exact.status.rows
        == [
            ("candidate", 27),
            ("accepted", 2),
            ("rejected", 1),
        ]
    )
    sample = drawn(session, scored, 12)
    sources = Counter(e.source for e in sample)
    assert dict(estimated.source.rows) == {s: round(n * 30 / 12) for s, n in sources.items()}
    categories = Counter(e.category for e in sample)
    assert dict(estimated.category.rows) == {c: round(n * 30 / 12) for c, n in categories.items()}


def test_the_pages_say_when_they_show_a_sample(
    client: TestClient, session: Session, scored: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    sign_in(client, make_user(session, "annotator"))
    base = f"/datasets/{scored.name}"
    for path in ("/stats", "/scores"):
        assert "from a sample of" not in client.get(base + path).text
    monkeypatch.setattr(sampling, "EXACT_UP_TO", 10)
    monkeypatch.setattr(sampling, "POOL_SAMPLE", 12)
    make_example(session, scored, 100)  # a change: the cached figures are read again
    stats = re.sub(r"\s+", " ", client.get(base + "/stats").text)
    assert "31 examples" in stats and "3 decided" in stats
    assert stats.count("· about, <span") == 2 and "from a sample of 12</span>" in stats
    scores = re.sub(r"\s+", " ", client.get(base + "/scores").text)
    assert '<span class="sampled" title="a uniform random sample of the dataset">' in scores
    assert "from a sample of 12</span>" in scores


def test_a_dataset_too_sparse_to_draw_from_is_counted_exactly(session: Session) -> None:
    sparse, dense = make_dataset(session), make_dataset(session)
    for i in range(3):
        make_example(session, sparse, i, source="first")
    for i in range(200):  # 200 other ids between the sparse dataset's first and last ones
        make_example(session, dense, 1000 + i)
    for i in range(3, 6):
        make_example(session, sparse, i, source="last")
    # 5 wanted: at most MAX_DRAWS * 5 ids looked up, which find about 3 of the 6.
    assert len(sampling.sample_rows(session, [sparse], 5, [Example.source])) < 5
    counts = breakdown(session, sparse, sample=5, exact_up_to=4)
    assert counts.sampled is None and dict(counts.source.rows) == {"first": 3, "last": 3}
