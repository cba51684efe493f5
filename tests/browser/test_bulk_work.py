"""Bulk work in the browser (issue 13): a histogram bar clicked filters 5,000 examples by its
score range and "all matching" is rejected as a job; a lasso on the embedding map selects what
it encloses and the bulk form acts on exactly those."""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any
from urllib.parse import quote, unquote

import numpy as np
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from app.collections.service import add_items, create_collection
from app.datasets.service import create_dataset
from app.models import Example, ReviewDecision
from app.platform.vectors.store import store_embeddings
from app.scoring.service import choose_scorer, get_or_create_scorer
from tests.browser.conftest import errors_of, screenshot
from tests.factories import make_example, unique

POOL_SIZE, SHORT = 5_000, 3_000  # 3,000 short answers (length 10), 2,000 long (length 90)


def _pool_of_5000(session: Session) -> tuple[int, str]:
    """A dataset of 5,000 examples with `length` scores, written by SQL (a few seconds)."""
    dataset = create_dataset(session, unique("bulk"))
    session.execute(
        text(
            "INSERT INTO examples (dataset_id, messages, instruction, input, output, meta, "
            "content_hash, source_format, source_keys, origin, status, version) "
            "SELECT :d, jsonb_build_array("
            "  jsonb_build_object('role', 'user', 'content', 'Question ' || g),"
            "  jsonb_build_object('role', 'assistant', 'content', 'Answer ' || g)),"
            " 'Question ' || g, '', 'Answer ' || g, '{}'::jsonb, md5(:d || ' bulk ' || g),"
            " 'alpaca', '[\"instruction\", \"input\", \"output\"]'::jsonb, 'import', 'candidate', 1"
            " FROM generate_series(1, :n) g"
        ),
        {"d": dataset.id, "n": POOL_SIZE},
    )
    scorer = get_or_create_scorer(session, choose_scorer(session, "length"))
    session.execute(
        text(
            "INSERT INTO scores (content_hash, scorer_id, value, state, details, prompt_tokens, "
            "completion_tokens, cost) SELECT content_hash, :s, "
            "CASE WHEN row_number() OVER (ORDER BY id) <= :short THEN 10 ELSE 90 END, 'ok', "
            "'{}'::jsonb, 0, 0, 0 FROM examples WHERE dataset_id = :d"
        ),
        {"s": scorer.id, "d": dataset.id, "short": SHORT},
    )
    return dataset.id, dataset.name


def test_a_bulk_reject_of_all_matching_a_histogram_bar_on_5000_examples(
    page_as: Callable[..., Any],
    db: Callable[[], AbstractContextManager[Session]],
    run_jobs: Callable[[], dict[int, str]],
) -> None:
    with db() as session:
        dataset_id, name = _pool_of_5000(session)
    page = page_as("lead")
    page.goto(f"/datasets/{quote(name)}")
    bars = page.locator("#scores a.bar-link")
    bars.first.wait_for()
    # Lengths 0 to 90 in 24 bars of 3.75: the 10s are in the third bar.
    third = bars.nth(2)
    assert third.get_attribute("data-score-range") == "length:7.5..11.25"
    with page.expect_navigation():
        third.locator("rect.hit").click()
    assert "score=length%3A7.5..11.25" in page.url
    form = page.locator("#bulk-form")
    form.locator("[data-bulk-count]").wait_for()
    assert "all 3,000 examples matching this filter" in re.sub(r"\s+", " ", form.inner_text())
    screenshot(page, "bulk-all-matching")
    form.locator("select[name=action]").select_option("reject")
    form.locator("input[name=reason]").fill("answers too short")
    with page.expect_navigation():
        form.get_by_role("button", name="Apply").click()
    outcome = page.locator("#bulk-outcome")
    assert "3,000 examples matched" in outcome.inner_text() and "job" in outcome.inner_text()
    assert unquote(page.url).count("score=length:7.5..11.25") == 1  # back on the same filter
    assert set(run_jobs().values()) == {"succeeded"}
    with db() as session:
        by_status = dict(
            session.execute(
                select(Example.status, func.count())
                .where(Example.dataset_id == dataset_id)
                .group_by(Example.status)
            ).all()
        )
        decisions = session.scalar(
            select(func.count())
            .select_from(ReviewDecision)
            .join(Example, Example.id == ReviewDecision.example_id)
            .where(Example.dataset_id == dataset_id, ReviewDecision.reason == "answers too short")
        )
    assert by_status == {"rejected": SHORT, "candidate": POOL_SIZE - SHORT}
    assert decisions == SHORT
    assert errors_of(page) == []


def test_a_lasso_on_the_map_selects_what_it_encloses(
    page_as: Callable[..., Any], db: Callable[[], AbstractContextManager[Session]]
) -> None:
    with db() as session:
        pool = create_dataset(session, unique("map"))
        examples = [make_example(session, pool, i) for i in range(40)]
        vectors = np.random.default_rng(3).standard_normal((40, 16)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        store_embeddings(session, [e.content_hash for e in examples], "browser-model", vectors)
        collection = create_collection(session, unique("mapped"))
        add_items(session, collection, [e.id for e in examples[:5]])
        name = collection.name
    page = page_as("lead")
    page.goto(f"/collections/{quote(name)}#map")
    svg = page.locator("svg[data-lasso]")
    svg.locator("circle[data-id]").first.wait_for()
    box = svg.bounding_box()
    assert box is not None
    # A lasso round the left half of the map, drawn as a person drags.
    left, top = box["x"] + 2, box["y"] + 2
    right, bottom = box["x"] + box["width"] / 2, box["y"] + box["height"] - 2
    centres = svg.locator("circle[data-id]").evaluate_all(
        "cs => cs.map(c => { const r = c.getBoundingClientRect();"
        " return [c.dataset.id, r.x + r.width / 2, r.y + r.height / 2]; })"
    )
    enclosed = {i for i, x, y in centres if left < x < right and top < y < bottom}
    assert 0 < len(enclosed) < len(centres)
    page.mouse.move(left, top)
    page.mouse.down()
    for x, y in ((right, top), (right, bottom), (left, bottom), (left, top + 1)):
        page.mouse.move(x, y, steps=8)
    page.mouse.up()
    form = page.locator("#map-bulk-form")
    chosen = set(
        form.locator("input[type=hidden][name=ids]").evaluate_all("xs => xs.map(x => x.value)")
    )
    assert chosen == enclosed
    assert f"{len(enclosed)} points selected" in form.inner_text()
    assert svg.locator("circle.lassoed").count() == len(enclosed)
    screenshot(page, "map-lasso")
    form.locator("select[name=action]").select_option("reject")
    form.locator("input[name=reason]").fill("off topic")
    with page.expect_navigation():
        form.get_by_role("button", name="Apply to the selected points").click()
    with db() as session:
        rejected = set(
            session.scalars(
                select(Example.id).where(
                    Example.dataset_id == pool.id, Example.status == "rejected"
                )
            )
        )
    assert {str(i) for i in rejected} == enclosed
    assert errors_of(page) == []
