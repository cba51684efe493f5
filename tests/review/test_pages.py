"""The review pages over HTTP: queue, next, decide, edit with a conflict, write, undo."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.collections.service import add_items, create_collection
from app.models import Embedding, Example, Score, Scorer, User
from app.platform.vectors.models import DEFAULT_MODEL
from tests.factories import make_dataset, make_example, make_user
from tests.web.test_pages import csrf_from, sign_in


@pytest.fixture
def annotator(session: Session) -> User:
    return make_user(session, "annotator")


@pytest.fixture
def pool(session: Session) -> list[Example]:
    dataset = make_dataset(session, "pool <b>1<b> &")
    return [make_example(session, dataset, i) for i in range(4)]


def start(client: TestClient, token: str, example: Example) -> str:
    """Take the next example of the example's dataset queue; its page's URL."""
    response = client.post(
        "/review/next",
        params={"dataset": example.dataset.name},
        data={"csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return response.headers["location"]


def test_review_accept_goes_on_to_the_next_example(
    client: TestClient, annotator: User, pool: list[Example]
) -> None:
    token = sign_in(client, annotator)
    home = client.get("/review")
    assert "pool &lt;b&gt;1&lt;b&gt; &amp;" in home.text
    queue = client.get("/review/queue", params={"dataset": pool[0].dataset.name})
    assert "4</b> waiting" in queue.text
    url = start(client, token, pool[0])
    assert url.startswith(f"/review/examples/{pool[0].id}?dataset=")
    page = client.get(url)
    assert page.status_code == 200 and 'data-key="a"' in page.text
    response = client.post(
        url.replace("?", "/decide?"),
        data={"csrf_token": token, "action": "accept", "version": "1"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"].startswith(f"/review/examples/{pool[1].id}?")
    assert "accept" in client.get(response.headers["location"]).text
    assert pool[0].status == "accepted"


def test_a_rejection_needs_a_reason_and_csrf(
    client: TestClient, annotator: User, pool: list[Example]
) -> None:
    token = sign_in(client, annotator)
    url = f"/review/examples/{pool[0].id}/decide"
    refused = client.post(url, data={"action": "reject", "version": "1", "reason": "x"})
    assert refused.status_code == 403
    missing = client.post(url, data={"csrf_token": token, "action": "reject", "version": "1"})
    assert missing.status_code == 422 and "why" in missing.text
    assert pool[0].status == "candidate"


def test_markdown_is_rendered_and_hostile_text_is_inert(
    client: TestClient, session: Session, annotator: User
) -> None:
    dataset = make_dataset(session)
    hostile = (
        "Run `ls`:\n\n```bash\necho '<b>hi</b>'\n```\n\n<script>window.__xss=1</script>"
        '<img src=x onerror="window.__xss=1"> [x](javascript:window.__xss=1) {{7*7}}'
    )
    example = make_example(session, dataset, record={"output": hostile})
    sign_in(client, annotator)
    page = client.get(f"/review/examples/{example.id}").text
    assert "<code class=\"language-bash\">echo '&lt;b&gt;hi&lt;/b&gt;'" in page
    assert "<script>window" not in page and "<img" not in page
    assert 'href="javascript' not in page
    assert "(javascript:window.__xss=1) {{7*7}}" in page  # shown as written, never evaluated


def test_a_stale_edit_shows_both_versions(
    client: TestClient, session: Session, annotator: User, pool: list[Example]
) -> None:
    token = sign_in(client, annotator)
    example = pool[0]
    url = f"/review/examples/{example.id}/edit"
    saved = client.post(
        url,
        data={"csrf_token": token, "version": "1", "turn_1": "Mine, first.", "action": "edit"},
        follow_redirects=False,
    )
    assert saved.status_code == 303 and example.version == 2
    stale = client.post(
        url, data={"csrf_token": token, "version": "1", "turn_1": "A stale edit.", "action": "edit"}
    )
    assert stale.status_code == 409
    assert "Mine, first." in stale.text and "A stale edit." in stale.text
    assert 'name="version" value="2"' in stale.text
    assert example.output == "Mine, first."
    page = client.get(f"/review/examples/{example.id}").text
    assert "<del>" in page and "<ins>Mine, first.</ins>" in page


def test_a_lead_meets_a_held_example_keeps_the_edit_and_takes_it_over(
    client: TestClient, session: Session, annotator: User, pool: list[Example]
) -> None:
    """Issue 13: a lead saving on an example an annotator held got a bare 409 page, the typed
    edit lost, with no word of who held it."""
    from app.review.queue import take_lease

    example = pool[0]
    assert take_lease(session, annotator, example.id)
    lead = make_user(session, "lead")
    token = sign_in(client, lead)
    url = f"/review/examples/{example.id}/edit"
    typed = "The lead rewrote this carefully."
    held = client.post(url, data={"csrf_token": token, "version": "1", "turn_1": typed})
    assert held.status_code == 409
    assert f"being reviewed by {annotator.name} until" in held.text
    assert held.text.count(typed) == 2  # in the editor and in the take-over form
    assert "Take it over and save my edit" in held.text
    taken = client.post(
        f"/review/examples/{example.id}/take-over",
        data={"csrf_token": token, "version": "1", "turn_1": typed},
        follow_redirects=False,
    )
    assert taken.status_code == 303 and "taken+over" in taken.headers["location"]
    session.refresh(example)
    assert example.output == typed
    # The annotator is told who took it when they try to decide.
    client.cookies.clear()
    token = sign_in(client, annotator)
    refused = client.post(
        f"/review/examples/{example.id}/decide",
        data={"csrf_token": token, "action": "accept", "version": str(example.version)},
    )
    assert refused.status_code == 409 and f"being reviewed by {lead.name}" in refused.text
    # An annotator cannot take an example over.
    assert (
        client.post(
            f"/review/examples/{example.id}/take-over",
            data={"csrf_token": token, "version": str(example.version)},
        ).status_code
        == 403
    )


def test_write_a_new_example_into_a_collection_and_undo_it(
    client: TestClient, session: Session, annotator: User, pool: list[Example]
) -> None:
    lead = make_user(session, "lead")
    create_collection(session, "set", target_size=3, user=lead)
    token = sign_in(client, annotator)
    form = client.get("/review/write", params={"collection": "set"})
    assert form.status_code == 200
    empty = client.post(
        "/review/write?collection=set",
        data={"csrf_token": token, "prompt": "Why?", "answer": "", "dataset": pool[0].dataset.name},
    )
    assert empty.status_code == 422 and "answer is empty" in empty.text and "Why?" in empty.text
    written = client.post(
        "/review/write?collection=set",
        data={
            "csrf_token": token,
            "prompt": "Why is the sky blue?",
            "answer": "Rayleigh scattering.",
            "dataset": pool[0].dataset.name,
        },
        follow_redirects=False,
    )
    assert written.status_code == 303
    example_id = int(written.headers["location"].split("/")[3].split("?")[0])
    assert session.get(Example, example_id).origin == "written"  # type: ignore[union-attr]
    undone = client.post(
        "/review/undo?collection=set",
        data={"csrf_token": csrf_from(form.text)},
        follow_redirects=False,
    )
    assert undone.status_code == 303 and undone.headers["location"].startswith("/review/queue")
    session.flush()
    assert session.get(Example, example_id) is None


def test_an_edited_example_shows_its_old_scores_as_stale(
    client: TestClient, session: Session, annotator: User, pool: list[Example]
) -> None:
    """Issue 13: after an edit the example said "Not scored yet" and its scores vanished."""
    from app.datasets.service import update_example

    example = pool[0]
    scorer = Scorer(name="alpagasus", version=1, key="s" * 64, kind="llm_rating", model="gpt-x")
    session.add(scorer)
    session.flush()
    session.add(Score(content_hash=example.content_hash, scorer_id=scorer.id, value=3.5))
    session.flush()
    update_example(session, example.id, 1, {"output": "Better."}, annotator)
    update_example(session, example.id, 2, {"output": "Best."}, annotator)
    sign_in(client, annotator)
    page = client.get(f"/review/examples/{example.id}").text
    assert "Not scored since the last edit." in page
    assert "stale (before edit 1)" in page and "3.5" in page
    assert "sift score --dataset" not in page  # the re-scoring hint is for leads


def test_scores_duplicates_neighbours_and_guidelines_are_shown(
    client: TestClient, session: Session, annotator: User, pool: list[Example]
) -> None:
    lead = make_user(session, "lead")
    collection = create_collection(session, "guided", target_size=3, user=lead)
    collection.guidelines = "# Be kind\n\n<script>window.__xss=1</script>"
    add_items(session, collection, [pool[0].id], user=lead)
    scorer = Scorer(name="alpagasus", version=1, key="k" * 64, kind="llm_rating", model="gpt-x")
    session.add(scorer)
    session.flush()
    session.add(
        Score(
            content_hash=pool[0].content_hash,
            scorer_id=scorer.id,
            value=4.5,
            raw="4.5\nAccurate and <b>complete</b>.",
        )
    )
    rng = np.random.default_rng(0)
    for example in pool:
        vector = rng.normal(size=8).astype(np.float32)
        session.add(
            Embedding(
                content_hash=example.content_hash,
                model=DEFAULT_MODEL,
                dim=8,
                vector=(vector / np.linalg.norm(vector)).tobytes(),
            )
        )
    session.flush()
    sign_in(client, annotator)
    page = client.get(f"/review/examples/{pool[0].id}", params={"collection": "guided"}).text
    assert "<h1>Be kind</h1>" in page and "&lt;script&gt;" in page
    assert "Accurate and &lt;b&gt;complete&lt;/b&gt;." in page and "4.5" in page
    near = client.get(f"/review/examples/{pool[0].id}/neighbours").text
    assert near.count("<li>") == 3 and f"#{pool[0].id}<" not in near
