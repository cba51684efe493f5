"""A lead's second pass and a takeover in the browser (issue 13): the lead approves one of an
annotator's decisions and sends the other back with a note by keyboard; the annotator sees the
note and gets the example back first. Then the lead takes over an example the annotator holds,
and the annotator is told who took it."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.collections.service import add_items, create_collection
from app.datasets.service import create_dataset
from app.models import Example, ReviewDecision
from app.users.service import create_user
from tests.browser.conftest import PASSWORD, errors_of
from tests.browser.test_team_review import sign_in
from tests.factories import make_example, unique


def test_second_pass_sends_a_decision_back_and_a_lead_takes_over(
    page_as: Callable[..., Any], db: Callable[[], AbstractContextManager[Session]]
) -> None:
    name = unique("checked")
    with db() as session:
        pool = create_dataset(session, unique("pool"))
        examples = [make_example(session, pool, i) for i in range(3)]
        collection = create_collection(session, name, target_size=3)
        add_items(session, collection, [e.id for e in examples])
        ids = [e.id for e in examples]
        annotator = create_user(session, unique("ann"), "annotator", PASSWORD).name
    ann = page_as(None)
    sign_in(ann, annotator)
    ann.goto(f"/review/queue?collection={quote(name)}")
    with ann.expect_navigation():
        ann.keyboard.press("Enter")
    with ann.expect_navigation():
        ann.keyboard.press("a")  # accepts example 0
    ann.keyboard.press("r")  # rejects example 1
    ann.keyboard.type("too short")
    with ann.expect_navigation():
        ann.keyboard.press("Enter")
    assert ann.url.split("/review/examples/")[1].startswith(str(ids[2]))  # holds example 2

    lead = page_as("lead")
    lead.goto("/review")
    assert "waiting for a lead's check" in lead.locator("#second-pass").inner_text()
    with lead.expect_navigation():
        lead.get_by_role("link", name="Second pass").click()
    # Other tests' annotators share the server: the lead narrows the list to this collection.
    lead.select_option("select[name=collection]", name)
    with lead.expect_navigation():
        lead.get_by_role("button", name="Filter").click()
    assert "2 waiting for a check" in lead.locator(".queue-head").inner_text()
    with lead.expect_navigation():
        lead.keyboard.press("Enter")
    assert f"{annotator} accepted example {ids[0]}" in lead.locator("h1").inner_text()
    with lead.expect_navigation():
        lead.keyboard.press("a")
    assert f"{annotator} rejected example {ids[1]}" in lead.locator("h1").inner_text()
    lead.keyboard.press("b")
    lead.keyboard.type("the answer is fine: accept it")
    with lead.expect_navigation():
        lead.keyboard.press("Enter")
    assert "Every decision in this list is checked" in lead.content()

    ann.goto("/review")
    sent_back = ann.locator("#sent-back").inner_text()
    assert "the answer is fine: accept it" in sent_back and str(ids[1]) in sent_back
    ann.goto(f"/review/queue?collection={quote(name)}")
    with ann.expect_navigation():
        ann.keyboard.press("Enter")
    # Example 2 is still theirs; the sent-back example comes next, with the note.
    assert ann.url.split("/review/examples/")[1].startswith(str(ids[2]))
    with ann.expect_navigation():
        ann.keyboard.press("s")
    assert ann.url.split("/review/examples/")[1].startswith(str(ids[1]))
    assert "the answer is fine: accept it" in ann.locator("#sent-back-note").inner_text()

    # The lead edits example 1, which the annotator holds now: told who, and takes it over.
    lead.goto(f"/review/examples/{ids[1]}?collection={quote(name)}")
    lead.keyboard.press("e")
    lead.keyboard.press("Control+a")
    lead.keyboard.type("A better answer.")
    with lead.expect_navigation():
        lead.keyboard.press("Control+Enter")
    assert f"being reviewed by {annotator}" in lead.locator(".alert-warn").inner_text()
    assert lead.locator("#turn_1").input_value() == "A better answer."  # the edit is kept
    with lead.expect_navigation():
        lead.get_by_role("button", name="Take it over and save my edit").click()
    assert "taken over" in lead.content()

    with ann.expect_navigation():
        ann.keyboard.press("a")  # too late: the lead has it
    assert "being reviewed by" in ann.content() and "lead" in ann.content()
    with db() as session:
        example = session.get(Example, ids[1])
        assert example is not None
        assert example.messages[1]["content"] == "A better answer."
        checks = session.scalars(
            select(ReviewDecision.check).where(ReviewDecision.example_id.in_(ids[:2]))
        ).all()
        assert sorted(c for c in checks if c) == ["approved", "sent_back"]
    for page in (ann, lead):
        assert errors_of(page) == []
