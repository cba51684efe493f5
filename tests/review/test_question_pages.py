"""Questions in the browser's pages over HTTP: the lead asks them on the collection dashboard,
sees the answers as bars with agreement, and filters by answer; an annotator answers on the
review page, with the decision or on their own (issue 13)."""

from __future__ import annotations

from urllib.parse import quote

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.collections.service import add_items, create_collection
from app.models import Collection, Example, User
from app.review.questions import QuestionSpec, add_question, my_answers, save_answers
from tests.factories import make_dataset, make_example, make_user, unique
from tests.review.test_questions import variants_of
from tests.web.test_pages import sign_in


def _collection(session: Session, n: int = 2) -> tuple[Collection, list[Example]]:
    dataset = make_dataset(session)
    examples = [make_example(session, dataset, i) for i in range(n)]
    collection = create_collection(session, unique("set"))
    add_items(session, collection, [e.id for e in examples])
    return collection, examples


def test_a_lead_asks_and_removes_questions_on_the_dashboard(
    client: TestClient, session: Session
) -> None:
    collection, _ = _collection(session)
    token = sign_in(client, make_user(session, "lead"))
    base = f"/collections/{quote(collection.name)}"
    assert "No questions yet" in client.get(base).text
    form = {"csrf_token": token, "key": "topic", "kind": "label", "prompt": "What <b>topic</b>?",
            "options": "code, math", "required": "1"}  # fmt: skip
    added = client.post(f"{base}/questions", data=form, follow_redirects=False)
    assert added.status_code == 303 and added.headers["location"].endswith("#questions")
    page = client.get(base).text
    assert "What &lt;b&gt;topic&lt;/b&gt;?" in page and 'aria-label="answers to topic"' in page
    again = client.post(f"{base}/questions", data=form)  # follows the redirect back
    assert "already has a question" in again.text and 'role="alert"' in again.text
    assert client.post(f"{base}/questions", data=form | {"csrf_token": "x"}).status_code == 403
    client.post(f"{base}/questions/topic/remove", data={"csrf_token": token})
    assert "No questions yet" in client.get(base).text
    annotator_token = sign_in(client, make_user(session, "annotator"))
    refused = client.post(f"{base}/questions", data=form | {"csrf_token": annotator_token})
    assert refused.status_code == 403


def test_the_dashboard_shows_answers_as_bars_with_agreement_and_filters(
    client: TestClient, session: Session
) -> None:
    collection, examples = _collection(session, 3)
    add_question(session, collection, QuestionSpec("quality", "rating"))
    add_question(session, collection, QuestionSpec("note", "text"))
    ann, bob = make_user(session, "lead"), make_user(session, "lead")
    for person, values in ((ann, (5, 4, 1)), (bob, (5, 3, 1))):
        for example, value in zip(examples, values, strict=True):
            save_answers(session, person, collection, example.id, {"quality": value})
    sign_in(client, make_user(session, "lead"))
    base = f"/collections/{quote(collection.name)}"
    page = client.get(base).text
    assert "6 answers on 3 examples" in page
    assert f'href="{base}/answers?question=quality&amp;value=5"' in page
    assert "Krippendorff's alpha (ordinal)" in page and "Agreement: not measured" in page
    filtered = client.get(f"{base}/answers", params={"question": "quality", "value": "5"})
    assert filtered.status_code == 200
    assert "1 example where someone answered" in filtered.text
    assert f"/examples/{examples[0].id}" in filtered.text
    assert f"{ann.name}: 5" in filtered.text and f"{bob.name}: 5" in filtered.text
    wrong = client.get(f"{base}/answers", params={"question": "quality", "value": "9"})
    assert wrong.status_code == 422 and "a rating is 1 to 5" in wrong.text


def _take(client: TestClient, token: str, collection: Collection) -> str:
    started = client.post(f"/review/next?collection={quote(collection.name)}",
                          data={"csrf_token": token}, follow_redirects=False)  # fmt: skip
    assert started.status_code == 303
    return started.headers["location"]


def test_an_annotator_answers_on_the_review_page(client: TestClient, session: Session) -> None:
    collection, examples = _collection(session)
    add_question(session, collection, QuestionSpec("quality", "rating", "How good?", required=True))
    add_question(session, collection, QuestionSpec("flaws", "labels", options=["long", "rude"]))
    add_question(session, collection, QuestionSpec("best", "ranking"))
    annotator: User = make_user(session)
    token = sign_in(client, annotator)
    url = _take(client, token, collection)
    page = client.get(url).text
    assert 'id="answers-form"' in page and "/static/questions.js" in page
    assert 'data-choice="5"' in page and "<kbd>q</kbd> next question" in page
    assert "nothing to rank" in page  # the example belongs to no Evol-Quality group
    decide = url.replace("?", "/decide?")
    missing = client.post(decide, data={"csrf_token": token, "action": "accept", "version": "1",
                                        "answer.quality": ""})  # fmt: skip
    assert missing.status_code == 422 and "answer the required question quality" in missing.text
    saved = client.post(url.replace("?", "/answers?"), follow_redirects=False,
                        data={"csrf_token": token, "answer.flaws": ["", "rude"]})  # fmt: skip
    assert saved.status_code == 303 and "answered=1" in saved.headers["location"]
    assert "Answers saved." in client.get(saved.headers["location"]).text
    done = client.post(decide, follow_redirects=False, data={
        "csrf_token": token, "action": "accept", "version": "1", "answer.quality": ["", "4"],
        "answer.flaws": [""],
    })  # fmt: skip
    assert done.status_code == 303
    assert my_answers(session, annotator, collection, examples[0].id) == {"quality": 4}


def test_a_ranking_shows_the_groups_variants(client: TestClient, session: Session) -> None:
    collection, examples = _collection(session, 1)
    grown = variants_of(session, examples[0], 2)
    add_items(session, collection, [v.id for v in grown])
    add_question(session, collection, QuestionSpec("best", "ranking", required=True))
    token = sign_in(client, make_user(session))
    page = client.get(_take(client, token, collection)).text
    for number, example in enumerate([examples[0], *grown], 1):
        assert f'data-choice="{number}" data-variant="{example.id}"' in page
    assert "Better 1." in page and "data-required" in page
