"""An annotator answers a collection's questions by keyboard on the review page: a rating and a
label by digits, a text by Enter; a required question holds the accept back and says so; the
lead sees the answers as bars and filters by one (issue 13)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any
from urllib.parse import quote

from sqlalchemy.orm import Session

from app.collections.service import add_items, create_collection
from app.datasets.service import create_dataset
from app.models import Example, User
from app.review.questions import QuestionSpec, add_question, my_answers
from tests.browser.conftest import errors_of, screenshot
from tests.browser.test_review_flow import current_id
from tests.factories import make_example, unique

Db = Callable[[], AbstractContextManager[Session]]


def answers_of(db: Db, user: User, name: str, example_id: int) -> dict[str, Any]:
    from app.collections.service import get_collection

    with db() as session:
        return my_answers(session, user, get_collection(session, name), example_id)


def status_of(db: Db, example_id: int) -> str:
    with db() as session:
        example = session.get(Example, example_id)
        assert example is not None
        return example.status


def test_an_annotator_answers_a_rating_and_a_label_by_keyboard(
    page_as: Callable[..., Any], db: Db, users: dict[str, User]
) -> None:
    name = unique("asked")
    with db() as session:
        pool = create_dataset(session, unique("pool"))
        ids = [make_example(session, pool, i).id for i in range(3)]
        collection = create_collection(session, name, target_size=10)
        add_items(session, collection, ids)
        add_question(session, collection, QuestionSpec("quality", "rating", "How good is the answer?", required=True))  # fmt: skip
        add_question(session, collection, QuestionSpec("topic", "label", "Topic?", ["code", "math", "writing"]))  # fmt: skip
        add_question(session, collection, QuestionSpec("note", "text", "Anything to add?"))
    page = page_as("annotator")
    page.goto(f"/review/queue?collection={quote(name)}")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert current_id(page) == ids[0]
    questions = page.locator("#questions")
    assert questions.locator("kbd", has_text="q").first.is_visible()  # the key hints show
    assert page.locator("fieldset.question.active").get_attribute("data-question") == "quality"

    page.keyboard.press("a")  # accept without the required rating: held back, said so
    error = page.locator("#questions-error")
    assert error.is_visible() and "quality" in error.inner_text()
    assert current_id(page) == ids[0] and status_of(db, ids[0]) == "candidate"

    page.keyboard.press("4")  # the rating; the label question comes next
    assert page.locator("input[name='answer.quality'][value='4']").is_checked()
    assert page.locator("fieldset.question.active").get_attribute("data-question") == "topic"
    page.keyboard.press("2")  # the second label: math
    assert page.locator("input[name='answer.topic'][value='math']").is_checked()
    screenshot(page, "review-questions")
    with page.expect_navigation():
        page.keyboard.press("a")
    assert current_id(page) == ids[1]
    assert status_of(db, ids[0]) == "accepted"
    annotator = users["annotator"]
    assert answers_of(db, annotator, name, ids[0]) == {"quality": 4, "topic": "math"}

    # The next example: a rating, a label, then Enter to type the note; Esc, and reject.
    page.keyboard.press("5")
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    page.keyboard.type("Clear and short.")
    page.keyboard.press("Escape")
    page.keyboard.press("r")
    page.keyboard.type("too short")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert current_id(page) == ids[2]
    assert status_of(db, ids[1]) == "rejected"
    assert answers_of(db, annotator, name, ids[1]) == {
        "quality": 5, "topic": "code", "note": "Clear and short.",
    }  # fmt: skip

    # Skipping needs no answer; the shortcuts list names the question keys.
    page.keyboard.press("?")
    assert "answer the highlighted question" in page.locator("#shortcuts").inner_text()
    page.keyboard.press("Escape")
    with page.expect_navigation():
        page.keyboard.press("s")
    assert errors_of(page) == []

    lead = page_as("lead")
    lead.goto(f"/collections/{quote(name)}#questions")
    bars = lead.locator("table[aria-label='answers to quality']")
    assert bars.is_visible()
    with lead.expect_navigation():
        bars.get_by_role("link", name="4").click()
    assert f"/examples/{ids[0]}" in lead.locator("table.items").inner_html()
    assert "1 example where someone answered" in lead.locator("body").inner_text()
    screenshot(lead, "collection-answers")
    assert errors_of(lead) == []


def test_an_annotator_ranks_an_evol_quality_groups_variants_by_keyboard(
    page_as: Callable[..., Any], db: Db, users: dict[str, User]
) -> None:
    from tests.review.test_questions import variants_of

    name = unique("ranked")
    with db() as session:
        pool = create_dataset(session, unique("pool"))
        root = make_example(session, pool, 0)
        group = [root.id, *(v.id for v in variants_of(session, root, 2))]
        collection = create_collection(session, name, target_size=10)
        add_items(session, collection, group)
        add_question(session, collection, QuestionSpec("best", "ranking", "Best answer first", required=True))  # fmt: skip
    page = page_as("annotator")
    page.goto(f"/review/queue?collection={quote(name)}")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert current_id(page) == root.id
    for key in ("3", "1"):
        page.keyboard.press(key)
    page.keyboard.press("a")  # one variant not ranked yet: held back
    assert "best" in page.locator("#questions-error").inner_text()
    page.keyboard.press("0")  # start again
    assert page.locator(".place", has_text="ranked").count() == 0
    for key in ("3", "1", "2"):
        page.keyboard.press(key)
    assert page.locator(".place").all_inner_texts() == ["ranked 2", "ranked 3", "ranked 1"]
    with page.expect_navigation():
        page.keyboard.press("a")
    order = [group[2], group[0], group[1]]
    assert answers_of(db, users["annotator"], name, root.id) == {"best": order}
    assert errors_of(page) == []
