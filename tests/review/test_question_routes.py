"""The questions API: a lead manages a collection's questions, an annotator answers about the
example their queue leased them, with a decision or separately; answers filter the examples
(issue 13)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.collections.service import add_items, create_collection
from app.models import Collection, Example
from tests.factories import make_dataset, make_example, make_token, unique


def _collection(session: Session, n: int = 3, overlap: int = 1) -> tuple[Collection, list[Example]]:
    dataset = make_dataset(session)
    examples = [make_example(session, dataset, i) for i in range(n)]
    collection = create_collection(session, unique("set"), overlap=overlap)
    add_items(session, collection, [e.id for e in examples])
    return collection, examples


def test_a_lead_manages_questions_and_an_annotator_only_reads_them(
    client: TestClient, session: Session
) -> None:
    collection, _ = _collection(session, 1)
    _, lead = make_token(session, "lead")
    _, annotator = make_token(session, "annotator")
    url = f"/api/v1/collections/{collection.name}/questions"
    topic = {"key": "topic", "kind": "label", "options": ["code", "math"], "required": True}
    assert client.post(url, json=topic, headers=annotator).status_code == 403
    created = client.post(url, json=topic, headers=lead)
    assert created.status_code == 201, created.text
    assert created.json() | {} == {
        "key": "topic", "kind": "label", "prompt": "topic", "options": ["code", "math"],
        "required": True, "answers": 0, "distribution": {},
    }  # fmt: skip
    assert client.post(url, json=topic, headers=lead).status_code == 409
    bad = client.post(url, json={"key": "x", "kind": "label", "options": ["a"]}, headers=lead)
    assert bad.status_code == 422 and "at least two" in bad.text
    client.post(url, json={"key": "quality", "kind": "rating"}, headers=lead)
    listed = client.get(url, headers=annotator).json()
    assert [q["key"] for q in listed] == ["topic", "quality"]
    assert listed[1]["distribution"] == {"1": 0, "2": 0, "3": 0, "4": 0, "5": 0}
    assert client.delete(f"{url}/topic", headers=annotator).status_code == 403
    removed = client.delete(f"{url}/topic", headers=lead)
    assert removed.json() == {"key": "topic", "answers_removed": 0}
    assert client.delete(f"{url}/topic", headers=lead).status_code == 404
    assert client.get("/api/v1/collections/nope/questions", headers=lead).status_code == 404


def test_answers_go_with_the_decision_or_alone(client: TestClient, session: Session) -> None:
    collection, examples = _collection(session, 2)
    _, lead = make_token(session, "lead")
    _, annotator = make_token(session, "annotator")
    base = f"/api/v1/collections/{collection.name}"
    client.post(f"{base}/questions", json={"key": "quality", "kind": "rating", "required": True},
                headers=lead)  # fmt: skip
    client.post(f"{base}/questions", json={"key": "flaws", "kind": "labels",
                                           "options": ["long", "rude"]}, headers=lead)  # fmt: skip
    taken = client.post("/api/v1/review/next", json={"collection": collection.name},
                        headers=annotator).json()["example"]  # fmt: skip
    other = next(e for e in examples if e.id != taken["id"])
    answers_url = "/api/v1/review/examples/{}/answers"
    refused = client.post(answers_url.format(other.id), headers=annotator,
                          json={"collection": collection.name, "answers": {"quality": 3}})  # fmt: skip
    assert refused.status_code == 403  # not leased to them
    alone = client.post(answers_url.format(taken["id"]), headers=annotator,
                        json={"collection": collection.name, "answers": {"flaws": ["rude"]}})  # fmt: skip
    assert alone.json() == {"example_id": taken["id"], "answers": {"flaws": ["rude"]}}
    decision = {"collection": collection.name, "action": "accept", "version": taken["version"]}
    missing = client.post(f"/api/v1/review/examples/{taken['id']}/decision", json=decision,
                          headers=annotator)  # fmt: skip
    assert missing.status_code == 422 and missing.json()["missing"] == ["quality"]
    wrong = client.post(f"/api/v1/review/examples/{taken['id']}/decision",
                        json=decision | {"answers": {"quality": 9}}, headers=annotator)  # fmt: skip
    assert wrong.status_code == 422
    done = client.post(f"/api/v1/review/examples/{taken['id']}/decision",
                       json=decision | {"answers": {"quality": 4}}, headers=annotator)  # fmt: skip
    assert done.status_code == 201, done.text
    listed = {q["key"]: q for q in client.get(f"{base}/questions", headers=lead).json()}
    assert listed["quality"]["distribution"]["4"] == 1 and listed["quality"]["answers"] == 1
    assert listed["flaws"]["distribution"] == {"long": 0, "rude": 1}
    # After the decision the lease is gone: the annotator's answers are closed.
    late = client.post(answers_url.format(taken["id"]), headers=annotator,
                       json={"collection": collection.name, "answers": {"quality": 1}})  # fmt: skip
    assert late.status_code == 403


def test_the_collections_examples_filter_by_answer(client: TestClient, session: Session) -> None:
    collection, examples = _collection(session, 3)
    _, lead = make_token(session, "lead")
    base = f"/api/v1/collections/{collection.name}"
    client.post(f"{base}/questions", json={"key": "quality", "kind": "rating"}, headers=lead)
    client.post(f"{base}/questions", json={"key": "note", "kind": "text"}, headers=lead)
    for example, value, note in zip(examples, (5, 2, 5), ("Great 100% answer", "meh", "ok"),
                                    strict=True):  # fmt: skip
        answered = client.post(f"/api/v1/review/examples/{example.id}/answers", headers=lead,
                               json={"collection": collection.name,
                                     "answers": {"quality": value, "note": note}})  # fmt: skip
        assert answered.status_code == 200, answered.text
    five = client.get(f"{base}/answers", params={"question": "quality", "value": "5"},
                      headers=lead).json()  # fmt: skip
    assert five["total"] == 2
    assert [e["id"] for e in five["examples"]] == [examples[0].id, examples[2].id]
    assert len(five["examples"][0]["answers"]) == 1
    words = client.get(f"{base}/answers", params={"question": "note", "value": "100%"},
                       headers=lead).json()  # fmt: skip
    assert [e["id"] for e in words["examples"]] == [examples[0].id]  # % taken literally
    nobody = client.get(f"{base}/answers", headers=lead,
                        params={"question": "quality", "value": "5", "annotator": "nobody"})  # fmt: skip
    assert nobody.json()["total"] == 0
    bad = client.get(f"{base}/answers", params={"question": "quality", "value": "7"}, headers=lead)
    assert bad.status_code == 422
