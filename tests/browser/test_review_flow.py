"""An annotator's hour in the browser, by keyboard: take examples from a collection's queue,
accept, reject, undo, edit an answer, meet a conflict, and write a new example."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.collections.service import add_items, create_collection, get_collection, item_ids
from app.datasets.service import create_dataset, update_example
from app.models import Example
from tests.browser.conftest import errors_of, screenshot
from tests.factories import make_example, unique

ANSWER = "Use a list comprehension:\n\n```python\nsquares = [x * x for x in range(10)]\n```"


def status_of(db: Callable[[], AbstractContextManager[Session]], example_id: int) -> Example:
    with db() as session:
        example = session.get(Example, example_id)
        assert example is not None
        session.expunge(example)
        return example


def current_id(page: Any) -> int:
    return int(page.url.split("/review/examples/")[1].split("?")[0])


def test_an_annotator_reviews_by_keyboard(
    page_as: Callable[..., Any], db: Callable[[], AbstractContextManager[Session]]
) -> None:
    name = unique("set")
    with db() as session:
        pool = create_dataset(session, unique("pool"))
        examples = [make_example(session, pool, 0, record={"output": ANSWER})]
        examples += [make_example(session, pool, i) for i in range(1, 5)]
        collection = create_collection(session, name, target_size=20)
        collection.guidelines = "Answers must be **complete** and kind."
        add_items(session, collection, [e.id for e in examples])
        ids = [e.id for e in examples]
        pool_name = pool.name
    page = page_as("annotator")
    page.goto(f"/review/queue?collection={quote(name)}")
    screenshot(page, "review-queue")
    with page.expect_navigation():
        page.keyboard.press("Enter")  # start reviewing
    assert current_id(page) == ids[0]
    assert page.locator(".guidelines strong").inner_text() == "complete"
    assert "squares = [x * x" in page.locator("pre code.language-python").inner_text()
    page.keyboard.press("?")
    assert page.locator("#shortcuts").is_visible()
    screenshot(page, "review-example")
    page.keyboard.press("Escape")
    assert not page.locator("#shortcuts").is_visible()

    with page.expect_navigation():
        page.keyboard.press("a")  # accept: on to the next one
    assert current_id(page) == ids[1]
    assert status_of(db, ids[0]).status == "accepted"

    page.keyboard.press("r")  # reject: the reason box takes the focus
    page.keyboard.type("wrong answer")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert current_id(page) == ids[2]
    assert status_of(db, ids[1]).status == "rejected"

    with page.expect_navigation():
        page.keyboard.press("u")  # undo the rejection: example 1 comes back
    assert current_id(page) == ids[1]
    assert status_of(db, ids[1]).status == "candidate"

    page.keyboard.press("e")  # edit the answer in place
    answer = page.locator("#editor textarea[name=turn_1]")
    assert answer.evaluate("element => element === document.activeElement")
    answer.fill("The number is one, said plainly.")
    with page.expect_navigation():
        page.keyboard.press("Control+Enter")
    assert status_of(db, ids[1]).output == "The number is one, said plainly."
    page.wait_for_url("**last_action=edit*")
    assert "said plainly." in page.locator(".changes ins").inner_text()

    # Someone else saves while this page is open: the next save meets a conflict.
    with db() as session:
        version = session.get(Example, ids[1]).version  # type: ignore[union-attr]
        update_example(session, ids[1], version, {"output": "Theirs, saved first."}, None)
    page.keyboard.press("e")
    page.locator("#editor textarea[name=turn_1]").fill("Mine, saved second.")
    with page.expect_navigation():
        page.keyboard.press("Control+Enter")
    body = page.locator("body").inner_text()
    assert "changed while you were editing" in body
    assert "Theirs, saved first." in body
    assert page.locator(".conflict textarea[name=turn_1]").input_value() == "Mine, saved second."
    assert status_of(db, ids[1]).output == "Theirs, saved first."
    screenshot(page, "review-conflict")
    with page.expect_navigation():
        page.get_by_role("button", name="Save mine over theirs").click()
    assert status_of(db, ids[1]).output == "Mine, saved second."

    with page.expect_navigation():
        page.keyboard.press("n")  # a new prompt with a hand-written answer
    page.fill("#prompt", "How do I boil an egg?")
    page.locator("select[name=dataset]").select_option(pool_name)
    page.fill("#answer", "Put it in boiling water for **seven** minutes.")
    with page.expect_navigation():
        page.keyboard.press("Control+Enter")
    written = current_id(page)
    assert page.locator(".conversation strong").inner_text() == "seven"
    with db() as session:
        example = session.get(Example, written)
        assert example is not None and (example.origin, example.status) == ("written", "accepted")
        assert written in item_ids(session, get_collection(session, name))
    assert errors_of(page) == []


def test_two_annotators_are_given_different_examples(
    page_as: Callable[..., Any], db: Callable[[], AbstractContextManager[Session]]
) -> None:
    with db() as session:
        pool = create_dataset(session, unique("pool"))
        first, second = (make_example(session, pool, i) for i in range(2))
        ids = [first.id, second.id]
        pool_name = pool.name
    ann = page_as("annotator")
    lead = page_as("lead")
    for page in (ann, lead):
        page.goto(f"/review/queue?dataset={quote(pool_name)}")
        with page.expect_navigation():
            page.get_by_role("button", name="Start reviewing").click()
    assert sorted([current_id(ann), current_id(lead)]) == ids
    with db() as session:
        assert session.scalars(select(Example.status).where(Example.id.in_(ids))).all() == [
            "candidate",
            "candidate",
        ]
