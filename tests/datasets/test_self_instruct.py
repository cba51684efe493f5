"""Self-Instruct's seed-task format imports: the instruction with its first instance, as
Alpaca's generate_instruction.py reads the 175 seed tasks; further instances stay in meta."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.datasets.importer import ImportRejected, import_file
from app.datasets.parsers import detect_format
from app.models import Example
from tests.factories import make_dataset, write_jsonl


def test_the_175_seed_tasks_import_by_detection(session: Session, data_dir: Path) -> None:
    path = data_dir / "alpaca" / "seed_tasks.jsonl"
    tasks = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    dataset = make_dataset(session)
    summary = import_file(session, dataset, path)
    assert (summary.format, summary.new, summary.invalid) == ("self-instruct", 175, 0)
    rows = session.scalars(
        select(Example).where(Example.dataset_id == dataset.id).order_by(Example.id)
    ).all()
    for task, example in zip(tasks, rows, strict=True):
        instance = task["instances"][0]
        assert (example.instruction, example.input, example.output) == (
            task["instruction"], instance["input"], instance["output"],
        )  # fmt: skip
        assert example.external_id == task["id"] and example.source_format == "self-instruct"
        assert example.meta == {
            "name": task["name"],
            "is_classification": task["is_classification"],
        }
    again = import_file(session, dataset, path, fmt="self-instruct")
    assert (again.new, again.duplicate) == (0, 175)


def test_more_instances_stay_in_meta_and_bad_tasks_are_named(
    session: Session, tmp_path: Path
) -> None:
    instances = [{"input": "2 + 2", "output": "4"}, {"input": "3 + 3", "output": "6"}]
    task = {"id": "t1", "instruction": "Add the numbers.", "instances": instances}
    assert detect_format(task) == "self-instruct"
    dataset = make_dataset(session)
    import_file(session, dataset, write_jsonl(tmp_path / "one.jsonl", [task]))
    example = session.scalars(select(Example).where(Example.dataset_id == dataset.id)).one()
    assert (example.input, example.output) == ("2 + 2", "4")
    assert example.meta == {"more_instances": [instances[1]]}
    bad = [
        {"instruction": "No instances.", "instances": []},
        {"instruction": "No output.", "instances": [{"input": ""}]},
        {"instruction": "", "instances": [{"input": "", "output": "x"}]},
    ]
    with pytest.raises(ImportRejected) as caught:
        import_file(session, make_dataset(session), write_jsonl(tmp_path / "bad.jsonl", bad))
    message = caught.value.message
    assert "line 1: field 'instances' must be a non-empty list" in message
    assert "line 2: field 'instances[0].output' is missing" in message
    assert "line 3: field 'instruction' is empty" in message
