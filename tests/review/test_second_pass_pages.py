"""The second pass over HTTP: the lead's list and check page, the API, and what the annotator
is shown (issue 13)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.collections.service import add_items, create_collection
from app.models import Example, ReviewAction, User
from app.review import queue as queues
from app.review import second_pass, service
from app.review.questions import QuestionSpec, add_question, save_answers
from tests.factories import make_dataset, make_example, make_token, make_user, unique
from tests.web.test_pages import sign_in


def _decided(session: Session, n: int) -> tuple[str, list[Example], str]:
    """A collection whose n examples one annotator decided (accept, reject, accept, …)."""
    dataset = make_dataset(session)
    examples = [make_example(session, dataset, i) for i in range(n)]
    collection = create_collection(session, unique("set"))
    add_items(session, collection, [e.id for e in examples])
    ann = make_user(session)
    queue = queues.open_queue(session, collection=collection.name, user=ann)
    for i in range(n):
        example = queues.next_example(session, queue, ann)
        assert example is not None
        action = ReviewAction.REJECT if i % 2 else ReviewAction.ACCEPT
        service.decide(session, ann, example.id, action, version=example.version,
                       reason="off topic" if i % 2 else "", queue=queue)  # fmt: skip
    return collection.name, examples, ann.name


def test_the_lead_checks_decisions_one_after_another_on_the_page(
    client: TestClient, session: Session
) -> None:
    name, examples, annotator = _decided(session, 3)
    lead = make_user(session, "lead")
    token = sign_in(client, lead)
    assert "Second pass" in client.get("/review").text
    listing = client.get("/review/checks", params={"collection": name})
    assert listing.status_code == 200 and "3</b> waiting for a check" in listing.text
    decision_ids = [
        int(i) for i in dict.fromkeys(re.findall(r'href="/review/checks/(\d+)', listing.text))
    ]
    assert len(decision_ids) == 3
    page = client.get(f"/review/checks/{decision_ids[0]}", params={"collection": name})
    assert page.status_code == 200 and f"{annotator} accepted example {examples[0].id}" in page.text
    approved = client.post(
        f"/review/checks/{decision_ids[0]}?collection={name}",
        data={"csrf_token": token, "outcome": "approve"},
        follow_redirects=False,
    )
    assert approved.status_code == 303
    assert approved.headers["location"].startswith(f"/review/checks/{decision_ids[1]}?")
    # Sending back without a note is refused on the page itself, the form kept.
    refused = client.post(
        f"/review/checks/{decision_ids[1]}?collection={name}",
        data={"csrf_token": token, "outcome": "send_back", "note": ""},
    )
    assert refused.status_code == 422 and "say what the annotator should do" in refused.text
    sent = client.post(
        f"/review/checks/{decision_ids[1]}?collection={name}",
        data={"csrf_token": token, "outcome": "send_back", "note": "it is on topic <b>"},
        follow_redirects=False,
    )
    assert sent.status_code == 303
    fixed = client.post(
        f"/review/checks/{decision_ids[2]}?collection={name}",
        data={
            "csrf_token": token,
            "outcome": "fix",
            "version": "2",
            "turn_1": "Fixed answer.",
            "note": "one fact was wrong",
        },
        follow_redirects=False,
    )
    assert fixed.status_code == 303, fixed.text
    assert fixed.headers["location"] == f"/review/checks?collection={name}&done=1"
    session.refresh(examples[2])
    assert examples[2].messages[1]["content"] == "Fixed answer."
    again = client.post(
        f"/review/checks/{decision_ids[0]}?collection={name}",
        data={"csrf_token": token, "outcome": "approve"},
    )
    assert again.status_code == 409 and f"already approved by {lead.name}" in again.text


def test_the_annotator_sees_what_was_sent_back_with_the_note(
    client: TestClient, session: Session
) -> None:
    name, _, annotator = _decided(session, 2)
    _, lead = make_token(session, "lead")
    checks = client.get("/api/v1/review/checks", params={"collection": name}, headers=lead)
    assert [c["action"] for c in checks.json()] == ["accept", "reject"]
    rejected = checks.json()[1]
    url = f"/api/v1/review/decisions/{rejected['decision_id']}/check"
    sent = client.post(url, json={"outcome": "send_back", "note": "on topic <i>"}, headers=lead)
    assert sent.status_code == 200 and sent.json()["check"] == "sent_back"
    assert client.post(url, json={"outcome": "approve"}, headers=lead).status_code == 409
    sign_in(client, session.scalars(select(User).where(User.name == annotator)).one())
    home = client.get("/review")
    assert "Sent back to you" in home.text and "on topic &lt;i&gt;" in home.text
    assert "<b>1</b> decided by you today" in home.text  # the reject sent back is withdrawn
    page = client.get(f"/review/examples/{rejected['example_id']}", params={"collection": name})
    assert "sent your reject back: on topic &lt;i&gt;" in page.text
    _, ann_token = make_token(session, "annotator")
    assert client.get("/api/v1/review/checks", headers=ann_token).status_code == 403
    forbidden = client.post(url, json={"outcome": "approve"}, headers=ann_token)
    assert forbidden.status_code == 403


def test_the_check_page_shows_the_annotators_answers(client: TestClient, session: Session) -> None:
    dataset = make_dataset(session)
    example = make_example(session, dataset, 0)
    collection = create_collection(session, unique("asked"))
    add_items(session, collection, [example.id])
    add_question(session, collection, QuestionSpec("quality", "rating", "How good?"))
    ann = make_user(session)
    queue = queues.open_queue(session, collection=collection.name, user=ann)
    taken = queues.next_example(session, queue, ann)
    assert taken is not None
    save_answers(session, ann, collection, taken.id, {"quality": 4})
    service.decide(session, ann, taken.id, ReviewAction.ACCEPT, version=taken.version, queue=queue)
    sign_in(client, make_user(session, "lead"))
    [waiting] = second_pass.pending(session, second_pass.Scope(collection=collection))
    page = client.get(f"/review/checks/{waiting.decision.id}")
    assert page.status_code == 200 and f"{ann.name}: 4" in page.text
