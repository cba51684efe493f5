"""A lead's afternoon in the browser: start a collection, preview and run a selection into it
from its dashboard, freeze a snapshot and download it."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.datasets.service import create_dataset
from app.models import Example
from tests.browser.conftest import errors_of, screenshot
from tests.factories import make_example, unique

SOURCES = ("wikihow", "stackexchange/physics", "alpaca")


def test_a_lead_selects_freezes_and_downloads(
    page_as: Callable[..., Any],
    db: Callable[[], AbstractContextManager[Session]],
    run_jobs: Callable[[], dict[int, str]],
    tmp_path: Path,
) -> None:
    with db() as session:
        pool = create_dataset(session, unique("pool"))
        for i in range(30):
            make_example(session, pool, i, source=SOURCES[i % 3])
        pool_name = pool.name
    name = unique("lima")
    page = page_as("lead")

    page.goto("/collections")
    page.fill("input[name=name]", name)
    page.fill("input[name=target_size]", "12")
    page.get_by_role("button", name="Create collection").click()
    page.wait_for_url(f"**/collections/{quote(name)}*")

    recipe = page.locator("form.recipe")
    recipe.locator("select[name=dataset]").select_option(pool_name)
    recipe.locator("select[name=method]").select_option("random")
    recipe.locator("input[name=budget]").fill("10")
    recipe.locator("input[name=seed]").fill("7")
    recipe.get_by_role("button", name="Preview").click()  # htmx: the page stays, #preview fills
    page.locator("#preview").get_by_text("10", exact=False).first.wait_for()
    screenshot(page, "collection-preview")
    with page.expect_navigation():  # the job is queued once the redirect arrives
        recipe.get_by_role("button", name="Run into collection").click()
    assert set(run_jobs().values()) == {"succeeded"}

    page.goto(f"/collections/{quote(name)}")
    assert "10 / 12" in page.locator("body").inner_text()
    page.fill("#snapshots input[name=note], form[action$='/snapshots'] input[name=note]", "first")
    with page.expect_navigation():
        page.get_by_role("button", name="Freeze a snapshot").click()
    row = page.locator("table.snapshots tbody tr").first
    assert "first" in row.inner_text()
    screenshot(page, "collection-dashboard")

    with page.expect_download() as download:
        row.get_by_role("link", name="jsonl", exact=True).click()
    saved = tmp_path / "snapshot.jsonl"
    download.value.save_as(saved)
    records = [json.loads(line) for line in saved.read_text().splitlines()]
    assert len(records) == 10
    with db() as session:
        texts = set(
            session.scalars(select(Example.instruction).where(Example.dataset_id == pool.id))
        )
    assert all(record_text(r) in texts for r in records)
    assert errors_of(page) == []


def record_text(record: dict[str, Any]) -> str:
    """The prompt of an exported record (Sift's jsonl keeps the messages)."""
    if "instruction" in record:
        return str(record["instruction"])
    return str(next(m["content"] for m in record["messages"] if m["role"] == "user"))
