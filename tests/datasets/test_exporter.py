"""Export: every format round-trips what came in; scores and embeddings ride along."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.datasets.exporter import ExportOptions, ExportSource, container_for, export_to_file
from app.datasets.importer import import_file
from app.models import (
    Collection,
    CollectionItem,
    Dataset,
    Embedding,
    Example,
    Score,
    Scorer,
    Snapshot,
    SnapshotItem,
)
from app.platform.errors import InvalidInput
from tests.factories import (
    alpaca_record,
    make_dataset,
    make_example,
    unique,
    write_json,
    write_jsonl,
)


def export(
    session: Session, dataset: Dataset | int, out: Path, fmt: str, **options: Any
) -> list[Any]:
    """Export a dataset (or an ExportSource) and read the file back."""
    source = dataset if isinstance(dataset, ExportSource) else ExportSource("dataset", dataset.id)
    n = export_to_file(session, source, ExportOptions(fmt, **options), out)
    if container_for(fmt, out) == "jsonl":
        records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    else:
        records = json.loads(out.read_text(encoding="utf-8"))
    assert len(records) == n
    return records


def imported(session: Session, path: Path, **kwargs: Any) -> Dataset:
    dataset = make_dataset(session)
    summary = import_file(session, dataset, path, **kwargs)
    assert summary.invalid == 0
    return dataset


def assert_same_records(exported: list[dict], original: list[dict]) -> None:
    assert len(exported) == len(original)
    for number, (got, want) in enumerate(zip(exported, original, strict=True), 1):
        assert list(got.items()) == list(want.items()), f"record {number} differs"


# ---------------------------------------------------------------- round trips


def test_openai_jsonl_round_trips(session: Session, tmp_path: Path) -> None:
    records = [
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello"},
            ]
        },
        {
            "messages": [
                {"role": "user", "content": "2+2?"},
                {"role": "assistant", "content": "4"},
                {"role": "user", "content": "3+3?"},
                {"role": "assistant", "content": "6"},
            ],
            "source": "math",
            "category": "arith",
            "tags": ["easy"],
        },
        {
            "messages": [
                {"role": "user", "content": "Caf\u00e9 \u2615 \U0001f600?"},
                {"role": "assistant", "content": "Line one\nline two"},
            ]
        },
    ]
    dataset = imported(session, write_jsonl(tmp_path / "chat.jsonl", records))
    exported = export(session, dataset, tmp_path / "out.jsonl", "openai")
    assert_same_records(exported, records)


def test_dolly_file_round_trips(session: Session, tmp_path: Path) -> None:
    records = [
        {
            "instruction": f"Question {i}?",
            "context": "Some context." if i % 2 else "",
            "response": f"Answer {i}.",
            "category": ["open_qa", "summarization", "closed_qa"][i % 3],
        }
        for i in range(12)
    ]
    dataset = imported(session, write_json(tmp_path / "dolly.json", records))
    rows = session.scalars(select(Example).where(Example.dataset_id == dataset.id)).all()
    assert {row.source_format for row in rows} == {"dolly"}
    exported = export(session, dataset, tmp_path / "out.json", "dolly")
    assert_same_records(exported, records)


def test_csv_round_trips_as_alpaca(session: Session, tmp_path: Path) -> None:
    rows = [alpaca_record(i) for i in range(5)]
    rows[1]["input"] = 'with, a comma and "quotes"'
    rows[2]["output"] = "two\nlines"
    path = tmp_path / "rows.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, ["instruction", "input", "output"])
        writer.writeheader()
        writer.writerows(rows)
    dataset = imported(session, path, fmt="csv")
    exported = export(session, dataset, tmp_path / "out.json", "alpaca")
    assert_same_records(exported, rows)


def test_parquet_round_trips_through_a_new_dataset(session: Session, tmp_path: Path) -> None:
    records = [
        {**alpaca_record(1), "category": "c1", "source": "alpaca", "rating": 4},
        {"instruction": "Tell me.", "input": "ctx", "output": "Told."},
        {
            "id": "conv-3",
            "conversations": [
                {"from": "system", "value": "S"},
                {"from": "human", "value": "Q1"},
                {"from": "gpt", "value": "A1"},
                {"from": "human", "value": "Q2"},
                {"from": "gpt", "value": "A2"},
            ],
        },
    ]
    first = imported(session, write_jsonl(tmp_path / "a.jsonl", records[:2]))
    import_file(session, first, write_json(tmp_path / "b.json", records[2:]))
    before = export(session, first, tmp_path / "before.jsonl", "jsonl")

    export_to_file(
        session, ExportSource("dataset", first.id), ExportOptions("parquet"), tmp_path / "x.parquet"
    )
    second = imported(session, tmp_path / "x.parquet")
    after = export(session, second, tmp_path / "after.jsonl", "jsonl")

    assert [r["messages"] for r in after] == [r["messages"] for r in before]
    fields = (
        "instruction",
        "input",
        "output",
        "source",
        "category",
        "meta",
        "external_id",
        "content_hash",
        "source_format",
    )
    for got, want in zip(after, before, strict=True):
        assert {k: got[k] for k in fields} == {k: want[k] for k in fields}
    assert before[0]["meta"] == {"rating": 4}


def test_export_converts_between_formats(session: Session, tmp_path: Path) -> None:
    dataset = imported(session, write_json(tmp_path / "a.json", [alpaca_record(1, category="c")]))
    assert export(session, dataset, tmp_path / "o.jsonl", "openai") == [
        {
            "messages": [
                {"role": "user", "content": "Say the number 1."},
                {"role": "assistant", "content": "The number is 1."},
            ],
            "category": "c",
        }
    ]
    (sharegpt,) = export(session, dataset, tmp_path / "s.json", "sharegpt")
    assert sharegpt["conversations"] == [
        {"from": "human", "value": "Say the number 1."},
        {"from": "gpt", "value": "The number is 1."},
    ]


def test_export_of_a_collection_and_a_snapshot(session: Session, tmp_path: Path) -> None:
    dataset = make_dataset(session)
    rows = [make_example(session, dataset, i) for i in range(4)]
    collection = Collection(name=unique("collection"))
    session.add(collection)
    session.flush()
    session.add_all(
        [CollectionItem(collection_id=collection.id, example_id=rows[i].id) for i in (3, 1)]
    )
    snapshot = Snapshot(collection_id=collection.id, digest=unique("digest"), example_count=2)
    session.add(snapshot)
    session.flush()
    for position, row in enumerate((rows[2], rows[0])):
        session.add(
            SnapshotItem(
                snapshot_id=snapshot.id,
                position=position,
                example_id=row.id,
                content_hash=row.content_hash,
                messages=row.messages,
                instruction=row.instruction,
                input=row.input,
                output=row.output,
                meta={},
                source_format="alpaca",
                source_keys=row.source_keys,
            )
        )
    session.flush()
    outputs = [row.output for row in rows]

    in_collection = export(
        session, ExportSource("collection", collection.id), tmp_path / "c.json", "alpaca"
    )
    assert [r["output"] for r in in_collection] == [outputs[1], outputs[3]]
    in_snapshot = export(
        session, ExportSource("snapshot", snapshot.id), tmp_path / "s.json", "alpaca"
    )
    assert [r["output"] for r in in_snapshot] == [outputs[2], outputs[0]]


def test_export_of_an_empty_dataset_is_an_empty_list(session: Session, tmp_path: Path) -> None:
    dataset = make_dataset(session)
    assert export(session, dataset, tmp_path / "e.json", "alpaca") == []
    assert export(session, dataset, tmp_path / "e.jsonl", "jsonl") == []


def test_unknown_export_format_writes_nothing(session: Session, tmp_path: Path) -> None:
    dataset = make_dataset(session)
    make_example(session, dataset)
    out = tmp_path / "x.yaml"
    with pytest.raises(InvalidInput, match="unknown export format 'yaml'"):
        export_to_file(session, ExportSource("dataset", dataset.id), ExportOptions("yaml"), out)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- scores and embeddings


def make_scorer(session: Session, name: str, version: int = 1) -> Scorer:
    scorer = Scorer(name=name, version=version, key=unique("key"), kind="llm_rating")
    session.add(scorer)
    session.flush()
    return scorer


def test_with_scores_adds_the_newest_scorer_versions(session: Session, tmp_path: Path) -> None:
    dataset = make_dataset(session)
    first, second, third = (make_example(session, dataset, i) for i in range(3))
    rater_v1 = make_scorer(session, unique("rater"))
    rater_v2 = make_scorer(session, rater_v1.name, version=2)
    length = make_scorer(session, unique("length"))
    session.add_all(
        [
            Score(content_hash=first.content_hash, scorer_id=rater_v1.id, value=3.0, state="ok"),
            Score(content_hash=first.content_hash, scorer_id=rater_v2.id, value=4.5, state="ok"),
            Score(content_hash=first.content_hash, scorer_id=length.id, value=120.0, state="ok"),
            Score(
                content_hash=second.content_hash,
                scorer_id=rater_v2.id,
                value=None,
                state="parse_error",
                raw="I think it is good",
            ),
            Score(content_hash=second.content_hash, scorer_id=length.id, value=7.0, state="failed"),
        ]
    )
    session.flush()

    records = export(session, dataset, tmp_path / "s.jsonl", "alpaca", with_scores=True)
    assert records[0]["scores"] == {rater_v1.name: 4.5, length.name: 120.0}
    assert records[1]["scores"] == {rater_v1.name: None, length.name: None}
    assert records[2]["scores"] == {}
    assert records[0]["output"] == first.output and third.id > second.id

    plain = export(session, dataset, tmp_path / "p.jsonl", "alpaca")
    assert all("scores" not in r for r in plain)


def test_with_embeddings_adds_the_vector(session: Session, tmp_path: Path) -> None:
    dataset = make_dataset(session)
    first, second = make_example(session, dataset, 1), make_example(session, dataset, 2)
    model, other = unique("minilm"), unique("other-model")
    vector = np.array([0.1, -0.2, 0.3, 0.9], dtype=np.float64)
    session.add_all(
        [
            Embedding(
                content_hash=first.content_hash,
                model=model,
                dim=4,
                vector=vector.astype(np.float32).tobytes(),
            ),
            Embedding(
                content_hash=first.content_hash,
                model=other,
                dim=2,
                vector=np.array([1.0, 0.0]).astype(np.float32).tobytes(),
            ),
        ]
    )
    session.flush()
    expected = vector.astype(np.float32).tolist()

    records = export(
        session,
        dataset,
        tmp_path / "e.jsonl",
        "openai",
        with_embeddings=True,
        embedding_model=model,
    )
    assert records[0]["embedding"] == expected
    assert records[0]["embedding"] == pytest.approx([0.1, -0.2, 0.3, 0.9], abs=1e-7)
    assert records[1]["embedding"] is None
    assert second.content_hash != first.content_hash

    # With no model named, the most recently computed one is used.
    newest = export(session, dataset, tmp_path / "n.json", "sharegpt", with_embeddings=True)
    assert newest[0]["embedding"] == [1.0, 0.0]

    parquet = tmp_path / "e.parquet"
    export_to_file(
        session,
        ExportSource("dataset", dataset.id),
        ExportOptions("parquet", with_embeddings=True, embedding_model=model),
        parquet,
    )
    import pyarrow.parquet as pq

    column = pq.read_table(parquet).column("embedding").to_pylist()
    assert column[0] == pytest.approx(expected) and column[1] is None


def test_with_embeddings_before_any_were_computed_is_invalid(
    session: Session, tmp_path: Path
) -> None:
    if session.scalar(select(Embedding.id).limit(1)) is not None:
        pytest.skip("this database already holds embeddings")
    dataset = make_dataset(session)
    make_example(session, dataset)
    out = tmp_path / "e.json"
    with pytest.raises(InvalidInput, match="no embeddings have been computed"):
        export_to_file(
            session,
            ExportSource("dataset", dataset.id),
            ExportOptions("alpaca", with_embeddings=True),
            out,
        )
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []
