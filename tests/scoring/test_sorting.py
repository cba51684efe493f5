"""Tables sorted by a score (keyset pages over the scores index, the unscored last), the score
columns, and score range filters as the histogram bars link them (issue 13)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import text
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from app.datasets.service import ExampleFilter, filtered_examples
from app.models import Dataset, Example
from app.platform.errors import InvalidInput
from app.scoring.chunks import upsert_scores
from app.scoring.service import (
    ScoreSort,
    choose_scorer,
    get_or_create_scorer,
    score_columns,
    score_condition,
    sorted_page,
)
from app.scoring.sorting import scored_order
from tests.factories import make_dataset, make_example

VALUES = [3.0, 1.0, None, 5.0, 1.0, None, 4.5, 2.0]


def _scored(session: Session, values: list[float | None]) -> tuple[Dataset, list[Example]]:
    """A dataset whose examples have these `length` scores (None: unscored)."""
    dataset = make_dataset(session)
    scorer = get_or_create_scorer(session, choose_scorer(session, "length"))
    examples = [make_example(session, dataset, i) for i in range(len(values))]
    upsert_scores(session, [
        {"content_hash": e.content_hash, "scorer_id": scorer.id, "value": v, "state": "ok",
         "raw": None, "details": {}}
        for e, v in zip(examples, values, strict=True) if v is not None
    ])  # fmt: skip
    return dataset, examples


def _all_pages(session: Session, dataset: Dataset, sort: ScoreSort, size: int) -> list[list[int]]:
    base = filtered_examples(dataset, ExampleFilter())
    pages, cursor = [], None
    while True:
        rows, cursor = sorted_page(session, base, sort, cursor, size)
        pages.append([e.id for e in rows])
        if cursor is None:
            return pages


@pytest.mark.parametrize("size", [1, 2, 3, 5, 20])
def test_sorted_pages_cover_every_example_once_highest_first_then_the_unscored(
    session: Session, size: int
) -> None:
    dataset, examples = _scored(session, VALUES)
    ids = [e.id for e in examples]
    by_value = sorted(
        ((v, e.content_hash, e.id) for e, v in zip(examples, VALUES, strict=True) if v is not None),
        reverse=True,
    )
    expected = [i for _, _, i in by_value] + [ids[2], ids[5]]
    pages = _all_pages(session, dataset, ScoreSort("length"), size)
    assert [i for page in pages for i in page] == expected
    assert all(len(page) <= size for page in pages)


def test_ascending_puts_the_lowest_first_and_the_unscored_still_last(session: Session) -> None:
    dataset, examples = _scored(session, VALUES)
    order = [i for page in _all_pages(session, dataset, ScoreSort("length", True), 3) for i in page]
    values = {e.id: v for e, v in zip(examples, VALUES, strict=True)}
    assert [values[i] for i in order] == [1.0, 1.0, 2.0, 3.0, 4.5, 5.0, None, None]


def test_sorting_keeps_the_filters(session: Session) -> None:
    dataset, _ = _scored(session, VALUES)
    base = filtered_examples(
        dataset, ExampleFilter(conditions=[score_condition(session, "length:2..5")])
    )
    rows, cursor = sorted_page(session, base, ScoreSort("length"), None, 10)
    columns = score_columns(session, rows, also="length")
    assert [columns.of(e.id, "length") for e in rows] == [4.5, 3.0, 2.0] and cursor is None


def test_sort_parameter_and_damaged_cursors(session: Session) -> None:
    assert ScoreSort.parse("") is None
    assert ScoreSort.parse("alpagasus") == ScoreSort("alpagasus")
    assert ScoreSort.parse("alpagasus:asc") == ScoreSort("alpagasus", True)
    assert ScoreSort.parse("lima@2").flipped().param == "lima@2:asc"  # type: ignore[union-attr]
    with pytest.raises(InvalidInput):
        ScoreSort.parse("drop table;")
    dataset, _ = _scored(session, VALUES)
    base = filtered_examples(dataset, ExampleFilter())
    with pytest.raises(InvalidInput):
        sorted_page(session, base, ScoreSort("length"), "s:1:not-hex!:3", 5)


def _count(session: Session, dataset: Dataset, expression: str) -> int:
    query = filtered_examples(
        dataset, ExampleFilter(conditions=[score_condition(session, expression)])
    )
    return len(session.scalars(query).all())


def test_range_filters_are_half_open_as_histogram_bars_count(session: Session) -> None:
    dataset, _ = _scored(session, VALUES)
    assert _count(session, dataset, "length:1..3") == 3  # 1, 1, 2 (not the 3)
    assert _count(session, dataset, "length:3..") == 3  # 3, 4.5, 5
    assert _count(session, dataset, "length:..2") == 2
    assert _count(session, dataset, "length : 4.5..5") == 1
    with pytest.raises(InvalidInput):
        score_condition(session, "length:..")


def test_the_first_sorted_page_walks_the_scores_index(session: Session) -> None:
    """EXPLAIN on 20,000 scored examples: the first page is read from the index in order (no
    Sort node over the pool); bench/ui.py --only bulk shows the same on a million."""
    dataset = make_dataset(session)
    scorer = get_or_create_scorer(session, choose_scorer(session, "length"))
    session.execute(
        text(
            "INSERT INTO examples (dataset_id, messages, instruction, input, output, meta, "
            "content_hash, source_format, source_keys, origin, status, version) "
            "SELECT :d, '[]'::jsonb, 'i', '', 'o', '{}'::jsonb, md5('sort ' || g), 'alpaca', "
            "'[]'::jsonb, 'import', 'candidate', 1 FROM generate_series(1, 20000) g"
        ),
        {"d": dataset.id},
    )
    session.execute(
        text(
            "INSERT INTO scores (content_hash, scorer_id, value, state, details, prompt_tokens, "
            "completion_tokens, cost) SELECT content_hash, :s, mod(id, 97)::float, 'ok', "
            "'{}'::jsonb, 0, 0, 0 FROM examples WHERE dataset_id = :d"
        ),
        {"s": scorer.id, "d": dataset.id},
    )
    session.execute(text("ANALYZE examples"))
    session.execute(text("ANALYZE scores"))
    base = filtered_examples(dataset, ExampleFilter())
    first_page = scored_order(base, scorer.id, ScoreSort("length"), None).limit(51)
    sql = first_page.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    plan = [row[0] for row in session.execute(text(f"EXPLAIN {sql}"))]
    assert any("ix_scores_scorer_id_value_content_hash" in line for line in plan), plan
    # At most an incremental sort of equal (value, hash) runs, never a sort of the pool.
    assert not any(re.search(r"(^|->\s+)Sort\s+\(cost", line.strip()) for line in plan), plan
    rows, _ = sorted_page(session, base, ScoreSort("length"), None, 50)
    assert [r.id for r in rows] == [r[0].id for r in session.execute(first_page.limit(50))]
