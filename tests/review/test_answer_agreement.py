"""Agreement per question equals the `krippendorff` library's own alpha on the same matrix, at
the question's level (ordinal and interval for a rating, nominal for a label and per label,
ordinal over places for a ranking); text is not measured, and an undefined alpha is None with a
reason (issue 13)."""

from __future__ import annotations

import json

import krippendorff
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from app.collections.service import add_items, create_collection
from app.entrypoints.cli import cli
from app.models import Collection, Example, ReviewQuestion
from app.platform.db import transaction
from app.review.answer_agreement import question_agreement, question_figures
from app.review.questions import QuestionSpec, add_question, save_answers
from tests.factories import make_dataset, make_example, make_token, make_user, unique

NAN = np.nan


def _question(kind: str, options: list[str] | None = None) -> ReviewQuestion:
    return ReviewQuestion(key="q", kind=kind, options=options or [], prompt="q")


def _library(rows: list[list[float]], level: str, domain: list[float]) -> float:
    return float(
        krippendorff.alpha(
            reliability_data=np.array(rows, dtype=float),
            value_domain=domain,
            level_of_measurement=level,
        )
    )


# Three annotators, five examples, answers missing here and there.
RATINGS = {
    "ann": {1: 5, 2: 4, 3: 2, 4: 1},
    "bob": {1: 4, 2: 4, 3: 3, 5: 2},
    "cat": {1: 5, 3: 1, 4: 2, 5: 2},
}


def _answers(table: dict[str, dict[int, object]]) -> list[tuple[str, int, object]]:
    return [(name, example, value) for name, row in table.items() for example, value in row.items()]


def test_a_rating_is_ordinal_and_interval_as_the_library_computes_them() -> None:
    figures = question_figures(_question("rating"), _answers(RATINGS))
    rows = [[RATINGS[n].get(i, NAN) for i in range(1, 6)] for n in sorted(RATINGS)]
    domain = [1, 2, 3, 4, 5]
    assert figures.level == "ordinal"
    assert figures.krippendorff_alpha == pytest.approx(_library(rows, "ordinal", domain), abs=1e-6)
    assert figures.interval_alpha == pytest.approx(_library(rows, "interval", domain), abs=1e-6)
    assert figures.krippendorff_alpha != pytest.approx(_library(rows, "nominal", domain), abs=1e-3)
    assert (figures.items, figures.paired, figures.annotators) == (5, 5, 3)


def test_a_label_is_nominal_over_its_options() -> None:
    options = ["code", "math", "art"]
    table = {"ann": {1: "code", 2: "math", 3: "art"}, "bob": {1: "code", 2: "art", 3: "art"}}
    figures = question_figures(_question("label", options), _answers(table))
    code = {o: i for i, o in enumerate(options)}
    rows = [[code[table[n][i]] for i in (1, 2, 3)] for n in ("ann", "bob")]
    assert figures.level == "nominal"
    assert figures.krippendorff_alpha == pytest.approx(
        _library(rows, "nominal", [0, 1, 2]), abs=1e-6
    )


def test_several_labels_give_one_nominal_alpha_per_label() -> None:
    options = ["long", "rude", "wrong"]
    table = {
        "ann": {1: ["long"], 2: ["long", "rude"], 3: [], 4: ["wrong"]},
        "bob": {1: ["long"], 2: ["rude"], 3: ["wrong"], 4: ["wrong"]},
    }
    figures = question_figures(_question("labels", options), _answers(table))
    assert figures.krippendorff_alpha is None and figures.level == "nominal"
    by_label = {entry.label: entry.krippendorff_alpha for entry in figures.by_label}
    for label in options:
        rows = [[float(label in table[n][i]) for i in (1, 2, 3, 4)] for n in ("ann", "bob")]
        assert by_label[label] == pytest.approx(_library(rows, "nominal", [0, 1]), abs=1e-6)


def test_a_ranking_is_ordinal_over_the_place_each_variant_was_given() -> None:
    table = {
        "ann": {10: [10, 11, 12], 20: [20, 21]},
        "bob": {10: [11, 10, 12], 20: [20, 21]},
        "cat": {10: [10, 11, 12]},
    }
    figures = question_figures(_question("ranking"), _answers(table))
    units = [(10, 10), (10, 11), (10, 12), (20, 20), (20, 21)]
    rows = [
        [float(table[n][e].index(v) + 1) if e in table[n] else NAN for e, v in units]
        for n in ("ann", "bob", "cat")
    ]
    assert figures.level == "ordinal"
    assert figures.krippendorff_alpha == pytest.approx(
        _library(rows, "ordinal", [1, 2, 3]), abs=1e-6
    )


def test_text_is_not_measured_and_undefined_alpha_says_why() -> None:
    text = question_figures(_question("text"), [("ann", 1, "fine"), ("bob", 1, "fine")])
    assert text.level is None and text.krippendorff_alpha is None
    assert any("not measured" in note for note in text.notes)
    alone = question_figures(_question("rating"), [("ann", 1, 4), ("ann", 2, 5)])
    assert alone.krippendorff_alpha is None and any("two annotators" in n for n in alone.notes)
    apart = question_figures(_question("rating"), [("ann", 1, 4), ("bob", 2, 5)])
    assert apart.krippendorff_alpha is None
    assert any("answered by two" in note for note in apart.notes)
    same = question_figures(_question("rating"), [("ann", 1, 4), ("bob", 1, 4), ("bob", 2, 1)])
    assert same.krippendorff_alpha is None
    assert any("every answer is the same" in note for note in same.notes)


def _answered_collection(session: Session) -> Collection:
    """A collection whose rating question two annotators answered (as leads, who answer any
    example nobody holds)."""
    dataset = make_dataset(session)
    examples: list[Example] = [make_example(session, dataset, i) for i in range(3)]
    collection = create_collection(session, unique("set"), overlap=2)
    add_items(session, collection, [e.id for e in examples])
    add_question(session, collection, QuestionSpec("quality", "rating"))
    add_question(session, collection, QuestionSpec("note", "text"))
    for person, values in ((make_user(session, "lead"), (5, 3, 1)),
                           (make_user(session, "lead"), (4, 3, 2))):  # fmt: skip
        for example, value in zip(examples, values, strict=True):
            save_answers(session, person, collection, example.id, {"quality": value})
    return collection


def test_the_collections_figures_come_from_its_answers(session: Session) -> None:
    collection = _answered_collection(session)
    quality, note = question_agreement(session, collection)
    rows = [[5, 3, 1], [4, 3, 2]]
    assert quality.krippendorff_alpha == pytest.approx(
        _library(rows, "ordinal", [1, 2, 3, 4, 5]), abs=1e-6
    )
    assert (quality.items, quality.paired, quality.annotators) == (3, 3, 2)
    assert note.level is None and note.items == 0


def test_the_agreement_api_and_cli_carry_the_questions(
    client: TestClient, session: Session
) -> None:
    collection = _answered_collection(session)
    _, lead = make_token(session, "lead")
    body = client.get(f"/api/v1/collections/{collection.name}/agreement", headers=lead).json()
    keys = [q["key"] for q in body["questions"]]
    assert keys == ["quality", "note"]
    quality = body["questions"][0]
    assert quality["level"] == "ordinal" and quality["krippendorff_alpha"] is not None
    assert body["questions"][1]["krippendorff_alpha"] is None


def test_sift_review_agreement_prints_the_questions(committed: Engine) -> None:
    with transaction() as session:
        name = _answered_collection(session).name
    result = CliRunner().invoke(cli, ["review", "agreement", "--collection", name, "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert [q["key"] for q in figures["questions"]] == ["quality", "note"]
    assert figures["questions"][0]["level"] == "ordinal"
    text = CliRunner().invoke(cli, ["review", "agreement", "--collection", name])
    assert "question quality (rating, ordinal): alpha" in text.output
    assert "question note (text): not measured" in text.output
