"""Exports carry the answers to a collection's questions with each example, per annotator: a
collection's live, a snapshot's as frozen; JSON, JSONL, Parquet and the HF folder alike
(issue 13)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from sqlalchemy.orm import Session

from app.collections.service import add_items, create_collection, create_snapshot
from app.datasets.exporter import ExportOptions, ExportSource, export_to_file
from app.models import Collection, Example, User
from app.review.questions import QuestionSpec, add_question, save_answers
from tests.factories import make_dataset, make_example, make_user, unique


def _answered(session: Session) -> tuple[Collection, list[Example], User, User]:
    """Two examples, two questions, two annotators' answers (as leads: no lease needed)."""
    dataset = make_dataset(session)
    examples = [make_example(session, dataset, i) for i in range(2)]
    collection = create_collection(session, unique("set"), overlap=2)
    add_items(session, collection, [e.id for e in examples])
    add_question(session, collection, QuestionSpec("quality", "rating"))
    add_question(session, collection, QuestionSpec("topic", "labels", options=["code", "math"]))
    ann, bob = make_user(session, "lead"), make_user(session, "lead")
    save_answers(session, ann, collection, examples[0].id, {"quality": 4, "topic": ["math"]})
    save_answers(session, bob, collection, examples[0].id, {"quality": 5})
    return collection, examples, ann, bob


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_a_collections_records_carry_every_annotators_answers(
    session: Session, tmp_path: Path
) -> None:
    collection, examples, ann, bob = _answered(session)
    source = ExportSource("collection", collection.id)
    export_to_file(session, source, ExportOptions("jsonl"), tmp_path / "c.jsonl")
    first, second = _jsonl(tmp_path / "c.jsonl")
    assert first["id"] == examples[0].id
    assert first["answers"] == {
        "quality": {ann.name: 4, bob.name: 5},
        "topic": {ann.name: ["math"]},
    }
    assert second["answers"] == {"quality": {}, "topic": {}}  # asked, not answered yet
    export_to_file(session, source, ExportOptions("alpaca"), tmp_path / "c.json")
    alpaca = json.loads((tmp_path / "c.json").read_text(encoding="utf-8"))
    assert alpaca[0]["answers"]["quality"] == {ann.name: 4, bob.name: 5}
    # Arrow files keep answers as JSON text (each collection shapes them its own way).
    export_to_file(session, source, ExportOptions("parquet"), tmp_path / "c.parquet")
    rows = pq.read_table(tmp_path / "c.parquet").to_pylist()
    assert json.loads(rows[0]["answers"]) == first["answers"]


def test_a_snapshot_freezes_the_answers_it_was_made_with(session: Session, tmp_path: Path) -> None:
    collection, examples, ann, _ = _answered(session)
    frozen, created = create_snapshot(session, collection)
    assert created
    save_answers(session, ann, collection, examples[0].id, {"quality": 1})
    out = tmp_path / "s.jsonl"
    export_to_file(session, ExportSource("snapshot", frozen.id), ExportOptions("jsonl"), out)
    assert _jsonl(out)[0]["answers"]["quality"][ann.name] == 4  # as frozen, not as now
    # Changed answers are changed content: freezing again makes a new snapshot.
    again, created = create_snapshot(session, collection)
    assert created and again.digest != frozen.digest
    export_to_file(session, ExportSource("snapshot", again.id), ExportOptions("jsonl"), out)
    assert _jsonl(out)[0]["answers"]["quality"][ann.name] == 1


def test_a_snapshot_exports_its_answers_to_a_dataset_dict_folder(
    session: Session, tmp_path: Path
) -> None:
    import datasets

    collection, _, ann, bob = _answered(session)
    frozen, _ = create_snapshot(session, collection)
    out = tmp_path / "hf"
    export_to_file(session, ExportSource("snapshot", frozen.id), ExportOptions("hf"), out)
    rows = datasets.load_from_disk(str(out))["train"].to_list()
    assert json.loads(rows[0]["answers"])["quality"] == {ann.name: 4, bob.name: 5}


def test_without_questions_no_record_carries_answers(session: Session, tmp_path: Path) -> None:
    _, examples, _, _ = _answered(session)
    dataset = ExportSource("dataset", examples[0].dataset_id)
    export_to_file(session, dataset, ExportOptions("jsonl"), tmp_path / "d.jsonl")
    assert all("answers" not in r for r in _jsonl(tmp_path / "d.jsonl"))
    plain = create_collection(session, unique("plain"))
    add_items(session, plain, [examples[0].id])
    export_to_file(session, ExportSource("collection", plain.id), ExportOptions("jsonl"),
                   tmp_path / "p.jsonl")  # fmt: skip
    frozen, _ = create_snapshot(session, plain)
    export_to_file(session, ExportSource("snapshot", frozen.id), ExportOptions("jsonl"),
                   tmp_path / "s.jsonl")  # fmt: skip
    for name in ("p.jsonl", "s.jsonl"):
        assert all("answers" not in r for r in _jsonl(tmp_path / name))
