"""Preference pairs from what reviewers did, in TRL's conversational format (issue 13)."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy.orm import Session

from app.collections.service import add_items, create_collection, create_snapshot
from app.datasets.exporter import ExportOptions, ExportSource, export_to_file
from app.datasets.service import update_example
from app.models import Example, Provenance
from tests.factories import make_dataset, make_example, make_user, unique


def _export(session: Session, kind: str, source_id: int, tmp_path: Path) -> list[dict]:
    out = tmp_path / f"{kind}.jsonl"
    export_to_file(session, ExportSource(kind, source_id), ExportOptions("dpo"), out)
    return [json.loads(line) for line in out.read_text().splitlines()]


def _variant(session: Session, root: Example, answer: str, status: str) -> Example:
    messages = [root.messages[0], {"role": "assistant", "content": answer}]
    variant = make_example(session, root.dataset, record={"output": answer}, status=status)
    variant.messages = messages
    session.add(
        Provenance(
            example_id=variant.id,
            method="evol-quality",
            parent_example_id=root.id,
            prompt="p",
            endpoint="e",
            model="m",
            variant_group=root.id,
        )
    )
    session.flush()
    return variant


def test_an_edit_gives_its_answer_against_the_one_it_replaced(
    session: Session, tmp_path: Path
) -> None:
    dataset = make_dataset(session)
    edited, untouched, reprompted = (make_example(session, dataset, i) for i in range(3))
    user = make_user(session)
    original = edited.output
    update_example(session, edited.id, 1, {"output": "A better answer."}, user)
    update_example(session, edited.id, 2, {"output": "The best answer."}, user)
    update_example(session, reprompted.id, 1, {"instruction": "Another question."}, user)
    [pair] = _export(session, "dataset", dataset.id, tmp_path)
    assert pair["prompt"] == [edited.messages[0]]
    assert pair["chosen"] == [{"role": "assistant", "content": "The best answer."}]
    assert pair["rejected"] == [{"role": "assistant", "content": original}]
    assert (pair["origin"], pair["example_ids"]) == ("edit", [edited.id])
    assert untouched.id not in pair["example_ids"]


def test_an_evol_quality_group_gives_accepted_against_rejected(
    session: Session, tmp_path: Path
) -> None:
    dataset = make_dataset(session)
    root = make_example(session, dataset, 1, status="rejected")
    good = _variant(session, root, "A deeper answer.", "accepted")
    bad = _variant(session, root, "A worse answer.", "rejected")
    _variant(session, root, "Not reviewed yet.", "candidate")
    pairs = _export(session, "dataset", dataset.id, tmp_path)
    assert [(p["example_ids"], p["chosen"][0]["content"], p["rejected"][0]["content"])
            for p in pairs] == [
        ([good.id, root.id], "A deeper answer.", root.output),
        ([good.id, bad.id], "A deeper answer.", "A worse answer."),
    ]  # fmt: skip
    assert all(p["origin"] == "evol-quality" for p in pairs)


def test_a_snapshot_gives_the_pairs_of_what_it_froze(session: Session, tmp_path: Path) -> None:
    dataset = make_dataset(session)
    kept, left = (make_example(session, dataset, i) for i in range(2))
    user = make_user(session)
    for example in (kept, left):
        update_example(session, example.id, 1, {"output": f"Edited {example.id}."}, user)
    collection = create_collection(session, unique("set"))
    add_items(session, collection, [kept.id])
    snapshot, _ = create_snapshot(session, collection)
    [pair] = _export(session, "snapshot", snapshot.id, tmp_path)
    assert pair["example_ids"] == [kept.id]
    assert pair["chosen"][0]["content"] == f"Edited {kept.id}."
