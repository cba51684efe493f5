"""A team reviews with overlap in the browser (issue 13): three annotators vote on a collection
that wants two votes per example, the lead settles the disputes in the reviewer queue, freezes
accepted-only, and the downloaded file holds exactly the accepted examples, each with its
status."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.collections.service import add_items, create_collection
from app.datasets.service import create_dataset
from app.models import Example
from app.users.service import create_user
from tests.browser.conftest import PASSWORD, errors_of
from tests.factories import make_example, unique


def sign_in(page: Any, name: str) -> None:
    page.goto("/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")


def review(page: Any, queue: str, verdicts: list[str]) -> None:
    """Start the queue and decide the examples it hands out, in order, by keyboard."""
    page.goto(f"/review/queue?{queue}")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    for verdict in verdicts:
        if verdict == "reject":
            page.keyboard.press("r")
            page.keyboard.type("not helpful")
            with page.expect_navigation():
                page.keyboard.press("Enter")
        else:
            with page.expect_navigation():
                page.keyboard.press("a")
    assert "/review/examples/" not in page.url  # the queue is done


def test_three_annotators_a_lead_and_an_accepted_only_snapshot(
    page_as: Callable[..., Any],
    db: Callable[[], AbstractContextManager[Session]],
    tmp_path: Path,
) -> None:
    name = unique("team")
    with db() as session:
        pool = create_dataset(session, unique("pool"))
        examples = [make_example(session, pool, i, source="a" if i < 3 else "b") for i in range(6)]
        collection = create_collection(session, name, target_size=6, overlap=2)
        add_items(session, collection, [e.id for e in examples])
        ids = [e.id for e in examples]
        people = [create_user(session, unique("ann"), "annotator", PASSWORD).name for _ in range(3)]
    first, second, third = (page_as(None) for _ in range(3))
    for page, person in zip((first, second, third), people, strict=True):
        sign_in(page, person)
    queue = f"collection={quote(name)}"
    review(first, queue, ["accept"] * 6)  # the first annotator votes on all six
    review(second, f"{queue}&source=a", ["reject", "accept", "accept"])  # disagrees on 0
    review(third, f"{queue}&source=b", ["reject", "accept", "accept"])  # disagrees on 3
    # Two votes each: nothing left for anyone.
    review(first, queue, [])

    lead = page_as("lead")
    lead.goto(f"/collections/{quote(name)}")
    review_card = lead.locator("#review").inner_text()
    assert "disputed 2" in review_card and "Krippendorff's alpha" in review_card
    with lead.expect_navigation():
        lead.get_by_role("link", name="settle them").click()
    with lead.expect_navigation():
        lead.keyboard.press("Enter")
    assert lead.url.split("/review/examples/")[1].startswith(str(ids[0]))
    with lead.expect_navigation():
        lead.keyboard.press("a")  # the lead keeps example 0
    lead.keyboard.press("r")  # and drops example 3
    lead.keyboard.type("the majority was right")
    with lead.expect_navigation():
        lead.keyboard.press("Enter")
    with db() as session:
        statuses = dict(
            session.execute(select(Example.id, Example.status).where(Example.id.in_(ids))).all()
        )
    assert [statuses[i] for i in ids] == ["accepted", "accepted", "accepted", "rejected",
                                          "accepted", "accepted"]  # fmt: skip

    lead.goto(f"/collections/{quote(name)}")
    lead.check("input[name=only_accepted]")
    with lead.expect_navigation():
        lead.get_by_role("button", name="Freeze a snapshot").click()
    row = lead.locator("table.snapshots tbody tr").first
    assert "accepted only; left out 1 rejected" in row.inner_text()
    with lead.expect_download() as download:
        row.get_by_role("link", name="jsonl", exact=True).click()
    saved = tmp_path / "accepted.jsonl"
    download.value.save_as(saved)
    records = [json.loads(line) for line in saved.read_text().splitlines()]
    assert [r["id"] for r in records] == [i for i in ids if statuses[i] == "accepted"]
    assert {r["status"] for r in records} == {"accepted"}
    for page in (first, second, third, lead):
        assert errors_of(page) == []
