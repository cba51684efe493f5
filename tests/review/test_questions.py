"""Questions beyond accept and reject: a lead asks them, annotators answer about the example
their queue leased them, each person's answer kept apart; required ones hold a decision back
(issue 13)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.collections.service import add_items, create_collection
from app.models import Collection, Example, Provenance, ReviewAction, ReviewAnswer, User
from app.platform.errors import Conflict, Forbidden, InvalidInput, NotFound
from app.review import queue as queues
from app.review import service
from app.review.questions import (
    MissingAnswers,
    QuestionSpec,
    add_question,
    from_form,
    list_questions,
    my_answers,
    remove_question,
    save_answers,
    variant_group,
)
from tests.factories import make_dataset, make_example, make_user, unique


def _collection(session: Session, n: int = 3, overlap: int = 1) -> tuple[Collection, list[Example]]:
    dataset = make_dataset(session)
    examples = [make_example(session, dataset, i) for i in range(n)]
    collection = create_collection(session, unique("set"), overlap=overlap)
    add_items(session, collection, [e.id for e in examples])
    return collection, examples


def variants_of(session: Session, root: Example, n: int) -> list[Example]:
    """`n` Evol-Quality variants grown from `root`, as the generator records them."""
    grown = []
    for i in range(n):
        variant = make_example(
            session,
            root.dataset,
            record={"instruction": root.instruction, "output": f"Better {i}."},
        )
        session.add(
            Provenance(
                example_id=variant.id, method="evol-quality", round=i + 1,
                parent_example_id=root.id, prompt="improve it", endpoint="test", model="m",
                variant_group=root.id,
            )
        )  # fmt: skip
        grown.append(variant)
    session.flush()
    return grown


def _take(session: Session, collection: Collection, user: User) -> Example:
    queue = queues.open_queue(session, collection=collection.name, user=user)
    example = queues.next_example(session, queue, user)
    assert example is not None
    return example


def test_a_lead_asks_questions_of_each_kind_in_order(session: Session) -> None:
    collection, _ = _collection(session, 1)
    add_question(session, collection, QuestionSpec("quality", "rating", "How good?"))
    add_question(session, collection, QuestionSpec("topic", "label", options=["code", "math"]))
    add_question(session, collection, QuestionSpec("flaws", "labels", options=["long", "rude"]))
    add_question(session, collection, QuestionSpec("note", "text"))
    add_question(session, collection, QuestionSpec("best", "ranking", required=True))
    asked = list_questions(session, collection)
    assert [(q.key, q.kind) for q in asked] == [
        ("quality", "rating"), ("topic", "label"), ("flaws", "labels"), ("note", "text"),
        ("best", "ranking"),
    ]  # fmt: skip
    assert asked[0].prompt == "How good?" and asked[3].prompt == "note"  # the key by default
    assert asked[1].options == ["code", "math"] and asked[4].required


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        (QuestionSpec("Quality", "rating"), "lowercase"),
        (QuestionSpec("q", "stars"), "choose one of"),
        (QuestionSpec("q", "label", options=["only"]), "at least two"),
        (QuestionSpec("q", "label", options=["a", "a"]), "repeat"),
        (QuestionSpec("q", "labels", options=[str(i) for i in range(10)]), "at most 9"),
        (QuestionSpec("q", "rating", options=["a", "b"]), "takes no options"),
    ],
)
def test_a_question_that_cannot_be_asked_says_why(
    session: Session, spec: QuestionSpec, error: str
) -> None:
    collection, _ = _collection(session, 1)
    with pytest.raises(InvalidInput, match=error):
        add_question(session, collection, spec)


def test_a_key_is_asked_once_and_removing_takes_the_answers(session: Session) -> None:
    collection, _ = _collection(session, 1)
    add_question(session, collection, QuestionSpec("quality", "rating"))
    with pytest.raises(Conflict):
        add_question(session, collection, QuestionSpec("quality", "text"))
    ann = make_user(session)
    example = _take(session, collection, ann)
    save_answers(session, ann, collection, example.id, {"quality": 4})
    assert remove_question(session, collection, "quality") == 1
    assert session.scalar(select(func.count()).select_from(ReviewAnswer)) == 0
    with pytest.raises(NotFound):
        remove_question(session, collection, "quality")


def test_answers_are_checked_against_the_question(session: Session) -> None:
    collection, _ = _collection(session, 1)
    for spec in (
        QuestionSpec("quality", "rating"),
        QuestionSpec("topic", "label", options=["code", "math"]),
        QuestionSpec("flaws", "labels", options=["long", "rude", "wrong"]),
        QuestionSpec("note", "text"),
    ):
        add_question(session, collection, spec)
    ann = make_user(session)
    example = _take(session, collection, ann)
    for bad in ({"quality": 6}, {"quality": True}, {"quality": "4.5"}, {"topic": "art"},
                {"flaws": ["long", "art"]}, {"note": "  "}, {"nope": 1}):  # fmt: skip
        with pytest.raises(InvalidInput):
            save_answers(session, ann, collection, example.id, bad)
    stored = save_answers(
        session, ann, collection, example.id,
        {"quality": "4", "topic": "math", "flaws": ["wrong", "long"], "note": " fine "},
    )  # fmt: skip
    # Labels keep the options' order; a rating typed as text is stored as the number.
    assert stored == {"quality": 4, "topic": "math", "flaws": ["long", "wrong"], "note": "fine"}
    save_answers(session, ann, collection, example.id, {"quality": 2, "note": None})
    assert my_answers(session, ann, collection, example.id) == {
        "quality": 2, "topic": "math", "flaws": ["long", "wrong"],
    }  # fmt: skip


def test_an_annotator_answers_only_the_example_leased_to_them(session: Session) -> None:
    collection, examples = _collection(session, 2)
    add_question(session, collection, QuestionSpec("quality", "rating"))
    ann, bob, lead = make_user(session), make_user(session), make_user(session, "lead")
    mine = _take(session, collection, ann)
    other = next(e for e in examples if e.id != mine.id)
    with pytest.raises(Forbidden):  # nobody leased it to them
        save_answers(session, ann, collection, other.id, {"quality": 3})
    with pytest.raises(Conflict, match="being reviewed by"):
        save_answers(session, bob, collection, mine.id, {"quality": 3})
    save_answers(session, lead, collection, other.id, {"quality": 5})  # a lead: nobody holds it
    outside = make_example(session, examples[0].dataset, 99)
    with pytest.raises(NotFound):
        save_answers(session, lead, collection, outside.id, {"quality": 5})


def test_answers_go_with_a_decision_and_required_ones_hold_it_back(session: Session) -> None:
    collection, _ = _collection(session, 1, overlap=2)
    add_question(session, collection, QuestionSpec("quality", "rating", required=True))
    add_question(session, collection, QuestionSpec("best", "ranking", required=True))
    ann, bob, cat = make_user(session), make_user(session), make_user(session)
    queue = queues.open_queue(session, collection=collection.name, user=ann)
    example = _take(session, collection, ann)
    with pytest.raises(MissingAnswers, match="quality") as missing:
        service.decide(session, ann, example.id, ReviewAction.ACCEPT,
                       version=example.version, queue=queue)  # fmt: skip
    # The ranking is required only where there is a group to rank.
    assert missing.value.detail["missing"] == ["quality"]
    service.decide(session, ann, example.id, ReviewAction.ACCEPT, version=example.version,
                   queue=queue, answers={"quality": 5})  # fmt: skip
    assert _take(session, collection, bob).id == example.id  # overlap 2: another person
    service.decide(session, bob, example.id, ReviewAction.SKIP, version=example.version,
                   queue=queue)  # fmt: skip
    assert _take(session, collection, cat).id == example.id
    service.decide(session, cat, example.id, ReviewAction.REJECT, version=example.version,
                   reason="thin", queue=queue, answers={"quality": 2})  # fmt: skip
    rows = session.execute(
        select(ReviewAnswer.user_id, ReviewAnswer.value).where(
            ReviewAnswer.example_id == example.id
        )
    ).all()
    assert sorted(rows) == sorted([(ann.id, 5), (cat.id, 2)])  # kept per person, none by bob


def test_answers_need_a_collection_queue(session: Session) -> None:
    _, examples = _collection(session, 1)
    ann = make_user(session)
    queue = queues.open_queue(session, dataset=examples[0].dataset.name, user=ann)
    example = queues.next_example(session, queue, ann)
    assert example is not None
    with pytest.raises(InvalidInput, match="collection"):
        service.decide(session, ann, example.id, ReviewAction.ACCEPT, version=example.version,
                       queue=queue, answers={"quality": 5})  # fmt: skip


def test_a_ranking_orders_every_variant_of_the_group(session: Session) -> None:
    collection, examples = _collection(session, 1)
    root = examples[0]
    grown = variants_of(session, root, 2)
    add_items(session, collection, [v.id for v in grown])
    group = [root.id, *(v.id for v in grown)]
    assert variant_group(session, root.id) == group == variant_group(session, grown[1].id)
    add_question(session, collection, QuestionSpec("best", "ranking"))
    lead = make_user(session, "lead")
    for bad in ([root.id, grown[0].id], [root.id, root.id, grown[0].id], [*group, 10**9]):
        with pytest.raises(InvalidInput, match="rank every variant"):
            save_answers(session, lead, collection, root.id, {"best": bad})
    order = [grown[1].id, root.id, grown[0].id]
    assert save_answers(session, lead, collection, root.id, {"best": order}) == {"best": order}
    joined = ",".join(map(str, order))  # as the page's form sends it
    assert save_answers(session, lead, collection, grown[0].id, {"best": joined}) == {"best": order}
    alone = make_example(session, root.dataset, 50)
    add_items(session, collection, [alone.id])
    assert variant_group(session, alone.id) == []
    with pytest.raises(InvalidInput, match="no Evol-Quality group"):
        save_answers(session, lead, collection, alone.id, {"best": [alone.id]})


def test_a_review_form_reads_as_answers(session: Session) -> None:
    collection, _ = _collection(session, 1)
    add_question(session, collection, QuestionSpec("quality", "rating"))
    add_question(session, collection, QuestionSpec("flaws", "labels", options=["a", "b"]))
    add_question(session, collection, QuestionSpec("note", "text"))
    asked = list_questions(session, collection)
    fields = {"quality": ["", "4"], "flaws": ["", "a", "b"], "note": [""]}
    assert from_form(asked, fields) == {"quality": "4", "flaws": ["a", "b"], "note": None}
    assert from_form(asked, {"flaws": [""]}) == {"flaws": None}
