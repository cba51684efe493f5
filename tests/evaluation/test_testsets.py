"""Test sets: the real published files import with the right counts; other files with a prompt
field, datasets and snapshots import too; a bad record stops the import and is named."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from app.collections.service import add_items, create_collection, create_snapshot
from app.evaluation.service import (
    get_test_set,
    import_test_set_file,
    import_test_set_from,
    import_test_set_records,
    prompts_of,
)
from app.evaluation.testsets import detect_format
from app.platform.errors import Conflict, InvalidInput, NotFound
from tests.factories import make_dataset, make_example, write_json, write_jsonl

REAL_SETS = [
    # file, format detected, prompts, turns, first id, categories
    ("alpagasus/vicuna_test_set.jsonl", "vicuna", 80, 1, "1", 9),
    ("alpagasus/wizardlm_test_set.jsonl", "wizardlm", 218, 1, "1", 29),
    ("alpagasus/sinstruct_test_set.jsonl", "self-instruct", 252, 1, "user_oriented_task_0", 71),
    ("mt_bench/question.jsonl", "mt-bench", 80, 2, "81", 8),
    ("vicuna_bench/question.jsonl", "mt-bench", 80, 1, "1", 9),
]


@pytest.mark.parametrize(("path", "fmt", "count", "turns", "first", "categories"), REAL_SETS)
def test_the_real_test_sets_import_whole(
    session: Session,
    data_dir: Path,
    path: str,
    fmt: str,
    count: int,
    turns: int,
    first: str,
    categories: int,
) -> None:
    test_set, created = import_test_set_file(session, data_dir / path, "real")
    prompts = prompts_of(session, test_set)
    assert created and (test_set.format, test_set.prompt_count) == (fmt, count)
    assert len(prompts) == count and test_set.max_turns == turns
    assert {len(p.turns) for p in prompts} == {turns}
    assert prompts[0].prompt_id == first
    assert len({p.category for p in prompts}) == categories
    assert len({p.prompt_id for p in prompts}) == count


def test_the_vicuna_sets_of_alpagasus_and_fastchat_ask_the_same(
    session: Session, data_dir: Path
) -> None:
    alpagasus, _ = import_test_set_file(session, data_dir / "alpagasus/vicuna_test_set.jsonl", "v1")
    fastchat, _ = import_test_set_file(session, data_dir / "vicuna_bench/question.jsonl", "v2")
    assert [p.turns for p in prompts_of(session, alpagasus)] == [
        p.turns for p in prompts_of(session, fastchat)
    ]


def test_self_instruct_inputs_are_asked_as_alpagasus_asked_them(
    session: Session, data_dir: Path
) -> None:
    test_set, _ = import_test_set_file(
        session, data_dir / "alpagasus/sinstruct_test_set.jsonl", "si", fmt="self-instruct"
    )
    first = prompts_of(session, test_set)[0]
    assert first.turns[0].startswith("The sentence you are given might be too wordy")
    assert " Input: If you have any questions about my rate" in first.turns[0]
    assert first.category == "Grammarly" and first.reference and first.reference[0]


def test_mt_bench_references_and_turns_are_kept(session: Session, data_dir: Path) -> None:
    test_set, _ = import_test_set_file(session, data_dir / "mt_bench/question.jsonl", "mt")
    prompts = prompts_of(session, test_set)
    assert prompts[0].turns[1] == (
        "Rewrite your previous response. Start every sentence with the letter A."
    )
    assert sum(1 for p in prompts if p.reference) == 39


def test_importing_again_is_a_no_op_and_a_taken_name_conflicts(
    session: Session, data_dir: Path
) -> None:
    path = data_dir / "alpagasus/vicuna_test_set.jsonl"
    first, _ = import_test_set_file(session, path, "vicuna")
    again, created = import_test_set_file(session, path, "vicuna")
    assert again.id == first.id and not created
    with pytest.raises(Conflict, match="exists with other prompts"):
        import_test_set_file(session, data_dir / "mt_bench/question.jsonl", "vicuna")


def test_any_file_with_a_prompt_field_imports(session: Session, tmp_path: Path) -> None:
    records = [
        {"prompt": "Name three rivers.", "category": "geo"},
        {"instruction": "Translate to French.", "input": "Good morning", "output": "Bonjour"},
        {"question": "Why is the sea salty?", "id": "sea"},
        {"query": "Best pasta shape?"},
    ]
    test_set, _ = import_test_set_file(session, write_json(tmp_path / "t.json", records), "mixed")
    prompts = prompts_of(session, test_set)
    assert test_set.format == "prompts"
    assert [p.turns[0] for p in prompts] == [
        "Name three rivers.",
        "Translate to French.\n\nGood morning",
        "Why is the sea salty?",
        "Best pasta shape?",
    ]
    assert [p.prompt_id for p in prompts] == ["1", "2", "sea", "4"]
    assert prompts[1].reference == ["Bonjour"]


def test_a_named_prompt_field(session: Session, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "t.jsonl", [{"ask": "One?", "text": "x"}, {"ask": "Two?"}])
    test_set, _ = import_test_set_file(session, path, "named", prompt_field="ask")
    assert [p.turns[0] for p in prompts_of(session, test_set)] == ["One?", "Two?"]


def test_bad_records_are_named_and_nothing_is_imported(session: Session, tmp_path: Path) -> None:
    records = [
        {"question_id": 1, "turns": ["Fine."]},
        {"question_id": 2, "turns": []},
        {"question_id": 1, "turns": ["A second 1."]},
        {"question_id": 4, "turns": ["ok", 5]},
    ]
    path = write_jsonl(tmp_path / "bad.jsonl", records)
    with pytest.raises(InvalidInput) as caught:
        import_test_set_file(session, path, "bad")
    message = caught.value.message
    assert message.startswith("3 bad record(s), nothing imported")
    assert "record 2: field 'turns' must be a non-empty list" in message
    assert "record 3: id '1' is already used by record 1" in message
    assert "record 4: field 'turns[1]' must be a non-empty string" in message
    with pytest.raises(NotFound):
        get_test_set(session, "bad")


def test_unreadable_files_and_formats_are_refused(session: Session, tmp_path: Path) -> None:
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"prompt": "ok"}\n{"prompt": \n')
    with pytest.raises(InvalidInput, match="record 2"):
        import_test_set_file(session, broken, "broken")
    with pytest.raises(InvalidInput, match="no prompt field"):
        import_test_set_records(session, "none", [{"answer": "42"}])
    with pytest.raises(InvalidInput, match="format"):
        import_test_set_records(session, "x", [{"prompt": "a"}], fmt="koala")
    with pytest.raises(InvalidInput, match="name"):
        import_test_set_records(session, "no spaces please", [{"prompt": "a"}])
    with pytest.raises(InvalidInput, match="no such file"):
        import_test_set_file(session, tmp_path / "missing.jsonl", "missing")


def test_formats_are_detected_from_the_first_record() -> None:
    assert detect_format({"question_id": 1, "text": "q", "category": "c"}) == "vicuna"
    assert detect_format({"idx": 1, "Skill": "Math", "Instruction": "q"}) == "wizardlm"
    assert detect_format({"id": "x", "instruction": "q", "instances": []}) == "self-instruct"
    assert detect_format({"question_id": 81, "turns": ["a", "b"]}) == "mt-bench"
    assert detect_format({"prompt": "q"}) == "prompts"


def test_a_dataset_or_a_snapshot_becomes_a_test_set(session: Session) -> None:
    dataset = make_dataset(session)
    examples = [make_example(session, dataset, i) for i in range(3)]
    test_set, _ = import_test_set_from(session, "from-dataset", dataset=dataset.name)
    prompts = prompts_of(session, test_set)
    assert [p.turns for p in prompts] == [
        ["Say the number 0."],
        ["Say the number 1."],
        ["Say the number 2."],
    ]
    assert prompts[0].reference == ["The number is 0."]
    assert [p.prompt_id for p in prompts] == [str(e.id) for e in examples]

    collection = create_collection(session, "frozen-prompts")
    add_items(session, collection, [examples[2].id, examples[0].id])
    snapshot, _ = create_snapshot(session, collection)
    frozen, _ = import_test_set_from(session, "from-snapshot", snapshot=snapshot.id)
    assert [p.turns[0] for p in prompts_of(session, frozen)] == [
        "Say the number 2.",
        "Say the number 0.",
    ]
    assert frozen.source == f"snapshot:{snapshot.id}"
    with pytest.raises(InvalidInput, match="a dataset or a snapshot"):
        import_test_set_from(session, "neither")
