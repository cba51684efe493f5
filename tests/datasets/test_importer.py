"""Import: real data files round-trip exactly; bad records are named and nothing is written."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.datasets.exporter import ExportOptions, ExportSource, export_to_file
from app.datasets.importer import ImportRejected, ImportSummary, import_file
from app.datasets.parsers import PARSERS
from app.models import Dataset, Example
from app.platform.errors import InvalidInput
from tests.factories import alpaca_record, make_dataset, write_json, write_jsonl

# ---------------------------------------------------------------- helpers


def count(session: Session, dataset: Dataset) -> int:
    return session.scalar(
        select(func.count()).select_from(Example).where(Example.dataset_id == dataset.id)
    )


def examples(session: Session, dataset: Dataset) -> list[Example]:
    return list(
        session.scalars(
            select(Example).where(Example.dataset_id == dataset.id).order_by(Example.id)
        )
    )


def rejected(session: Session, path: Path, **kwargs: Any) -> str:
    """Import `path` into a fresh dataset, expect rejection, check nothing was written."""
    dataset = make_dataset(session)
    with pytest.raises(ImportRejected) as caught:
        import_file(session, dataset, path, **kwargs)
    assert caught.value.status_code == 422
    assert count(session, dataset) == 0
    return caught.value.message


def export_records(session: Session, dataset: Dataset, fmt: str, out: Path) -> list[Any]:
    n = export_to_file(session, ExportSource("dataset", dataset.id), ExportOptions(fmt), out)
    if out.suffix == ".jsonl":
        records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    else:
        records = json.loads(out.read_text(encoding="utf-8"))
    assert len(records) == n
    return records


def assert_same_records(exported: list[dict], original: list[dict]) -> None:
    """Field by field, keys in the same order."""
    assert len(exported) == len(original)
    for number, (got, want) in enumerate(zip(exported, original, strict=True), 1):
        assert list(got.items()) == list(want.items()), f"record {number} differs"


# ---------------------------------------------------------------- real data

REAL_FILES = [
    # path, detected format, records read, new, export format
    ("alpagasus/random_9k.json", "alpaca", 9_229, 9_229, "alpaca"),
    ("alpagasus/dolly_3k.json", "alpaca", 2_996, 2_994, "alpaca"),
    ("lima/lima.json", "lima", 1_029, 1_029, "alpaca"),
    ("sharegpt_sample/dummy_conversation.json", "sharegpt", 500, 500, "sharegpt"),
]


def unique_by_content(records: list[dict], fmt: str) -> list[dict]:
    """The records left after dropping later ones whose content repeats an earlier one."""
    seen: set[str] = set()
    kept = []
    for record in records:
        digest = PARSERS[fmt](record).content_hash
        if digest not in seen:
            seen.add(digest)
            kept.append(record)
    return kept


@pytest.mark.parametrize(("name", "fmt", "read", "new", "export_fmt"), REAL_FILES)
def test_real_file_imports_exports_exactly_and_reimports_nothing(
    session: Session,
    data_dir: Path,
    tmp_path: Path,
    name: str,
    fmt: str,
    read: int,
    new: int,
    export_fmt: str,
) -> None:
    path = data_dir / name
    original = json.loads(path.read_text(encoding="utf-8"))
    dataset = make_dataset(session)

    summary = import_file(session, dataset, path)
    assert (summary.format, summary.read, summary.new) == (fmt, read, new)
    assert (summary.duplicate, summary.invalid, summary.errors) == (read - new, 0, [])
    assert count(session, dataset) == new
    assert f"{new:,} new, {read - new:,} duplicate, 0 invalid" in summary.line()

    exported = export_records(session, dataset, export_fmt, tmp_path / "out.json")
    assert_same_records(exported, unique_by_content(original, fmt))

    again = import_file(session, dataset, path)
    assert (again.read, again.new, again.duplicate, again.invalid) == (read, 0, read, 0)
    assert count(session, dataset) == new


def test_dolly_duplicates_are_dropped_and_categories_kept(session: Session, data_dir: Path) -> None:
    original = json.loads((data_dir / "alpagasus/dolly_3k.json").read_text(encoding="utf-8"))
    # One exact duplicate record, and one pair with the same conversation but another category.
    exact = [r for r in original if original.count(r) > 1]
    assert len(exact) == 2
    dataset = make_dataset(session)
    summary = import_file(session, dataset, data_dir / "alpagasus/dolly_3k.json")
    assert (summary.new, summary.duplicate) == (2_994, 2)

    rows = examples(session, dataset)
    assert all(row.category for row in rows)
    kept = unique_by_content(original, "alpaca")
    assert Counter(row.category for row in rows) == Counter(r["category"] for r in kept)
    assert [row.category for row in rows] == [r["category"] for r in kept]
    assert {row.source_format for row in rows} == {"alpaca"}


def test_lima_keeps_multi_turn_conversations(session: Session, data_dir: Path) -> None:
    original = json.loads((data_dir / "lima/lima.json").read_text(encoding="utf-8"))
    dataset = make_dataset(session)
    import_file(session, dataset, data_dir / "lima/lima.json")
    rows = examples(session, dataset)
    multi = [row for row in rows if len(row.messages) > 2]
    assert len(multi) == 29 == sum(1 for r in original if r["history"])
    assert {row.source_format for row in rows} == {"lima"}
    for row, record in zip(rows, original, strict=True):
        assert len(row.messages) == 2 + 2 * len(record["history"])
        assert row.messages[-1] == {"role": "assistant", "content": record["output"]}


def test_sharegpt_sample_keeps_ids_and_turns(session: Session, data_dir: Path) -> None:
    path = data_dir / "sharegpt_sample/dummy_conversation.json"
    original = json.loads(path.read_text(encoding="utf-8"))
    dataset = make_dataset(session)
    import_file(session, dataset, path)
    rows = examples(session, dataset)
    assert [row.external_id for row in rows] == [r["id"] for r in original]
    assert [len(row.messages) for row in rows] == [len(r["conversations"]) for r in original]


# ---------------------------------------------------------------- bad input


def test_truncated_json_list_is_rejected(session: Session, tmp_path: Path) -> None:
    text = json.dumps([alpaca_record(i) for i in range(3)])
    path = tmp_path / "cut.json"
    path.write_text(text[: text.rindex("{") + 20], encoding="utf-8")
    message = rejected(session, path)
    assert "record 3: " in message
    assert "truncated" in message


def test_truncated_last_jsonl_line_is_rejected(session: Session, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "cut.jsonl", [alpaca_record(i) for i in range(3)])
    path.write_bytes(path.read_bytes()[:-15])
    message = rejected(session, path)
    assert "line 3: " in message
    assert "truncated" in message


@pytest.mark.parametrize("suffix", ["json", "jsonl"])
def test_wrong_type_is_rejected_with_the_field(
    session: Session, tmp_path: Path, suffix: str
) -> None:
    records = [
        alpaca_record(1),
        {"instruction": "Count.", "input": "", "output": 5},
        alpaca_record(3),
    ]
    path = (write_json if suffix == "json" else write_jsonl)(tmp_path / f"bad.{suffix}", records)
    message = rejected(session, path)
    unit = "record" if suffix == "json" else "line"
    assert f"{unit} 2: field 'output' must be a string, got a number" in message
    assert "1 of 3 records are invalid" in message


def test_invalid_utf8_in_a_jsonl_line_is_rejected(session: Session, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "bytes.jsonl", [alpaca_record(i) for i in range(3)])
    path.write_bytes(path.read_bytes().replace(b"number is 1", b"number is \xff1"))
    message = rejected(session, path)
    assert "line 2: the text is not valid UTF-8" in message


def test_invalid_utf8_in_a_json_list_is_rejected(session: Session, tmp_path: Path) -> None:
    path = write_json(tmp_path / "bytes.json", [alpaca_record(i) for i in range(3)])
    path.write_bytes(path.read_bytes().replace(b"number is 1", b"number is \xc3\x281"))
    message = rejected(session, path)
    assert "record 2: " in message
    # The same clear reason as for JSONL, not the parser's raw bytes.
    assert "not valid UTF-8" in message
    assert "b'" not in message


@pytest.mark.parametrize(
    "content",
    [
        b'[{"instruction": "a", "input": "", "output": "b"',  # a one-record file cut short
        b'[{"instruction": "a", "input": "", "output": }]',
        b'[{"instruction": "a", "input": "", "output": "b"} {"instruction": "c"}]',
    ],
)
def test_malformed_first_record_of_a_json_list_is_named(
    session: Session, tmp_path: Path, content: bytes
) -> None:
    # Not "the JSON list is empty": the file has a record, and it is broken.
    path = tmp_path / "first.json"
    path.write_bytes(content)
    dataset = make_dataset(session)
    with pytest.raises(ImportRejected) as caught:
        import_file(session, dataset, path)
    assert "record 1: malformed JSON" in caught.value.message or (
        "record 2: malformed JSON" in caught.value.message
    )
    assert "empty" not in caught.value.message
    assert count(session, dataset) == 0


def test_invalid_utf8_in_a_csv_row_is_named(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "bytes.csv"
    path.write_bytes(b"instruction,input,output\na,,b\nc,,d\ne,,f\xff\n")
    message = rejected(session, path)
    assert "row 3: the text is not valid UTF-8" in message


@pytest.mark.parametrize("suffix", ["json", "jsonl"])
def test_a_nul_character_is_a_bad_record_not_a_crash(
    session: Session, tmp_path: Path, suffix: str
) -> None:
    # PostgreSQL cannot store NUL in text or jsonb; both backends must treat it alike.
    records = [alpaca_record(1), {"instruction": "a", "input": "", "output": "b\u0000c"}]
    path = (write_json if suffix == "json" else write_jsonl)(tmp_path / f"nul.{suffix}", records)
    message = rejected(session, path)
    unit = "record" if suffix == "json" else "line"
    assert f"{unit} 2: " in message
    assert "nul" in message.lower()


@pytest.mark.parametrize("content", [b"", b"  \n\n", b"\xef\xbb\xbf", b"[]", b"[\n]\n"])
def test_an_empty_file_is_invalid_input(session: Session, tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "empty.json"
    path.write_bytes(content)
    dataset = make_dataset(session)
    with pytest.raises(InvalidInput, match="empty") as caught:
        import_file(session, dataset, path)
    assert not isinstance(caught.value, ImportRejected)
    assert count(session, dataset) == 0


@pytest.mark.parametrize(("name", "fmt"), [("empty.jsonl", "jsonl"), ("empty.csv", "csv")])
def test_an_empty_file_of_a_named_format_is_invalid_input(
    session: Session, tmp_path: Path, name: str, fmt: str
) -> None:
    path = tmp_path / name
    path.write_bytes(b"")
    dataset = make_dataset(session)
    with pytest.raises(InvalidInput, match=r"empty|no records to import") as caught:
        import_file(session, dataset, path, fmt=fmt)
    assert not isinstance(caught.value, ImportRejected)
    assert count(session, dataset) == 0


@pytest.mark.parametrize("suffix", ["json", "jsonl"])
def test_a_10_mb_record_is_rejected(session: Session, tmp_path: Path, suffix: str) -> None:
    huge = {"instruction": "Repeat.", "input": "", "output": "x" * 10_000_000}
    records = [alpaca_record(1), huge]
    path = (write_json if suffix == "json" else write_jsonl)(tmp_path / f"huge.{suffix}", records)
    message = rejected(session, path)
    unit = "record" if suffix == "json" else "line"
    assert f"{unit} 2: the record is" in message
    assert "over the limit of 2,000,000" in message


def test_a_record_without_a_response_is_rejected(session: Session, tmp_path: Path) -> None:
    path = write_json(
        tmp_path / "nores.json", [alpaca_record(1), {"instruction": "Tell me.", "input": ""}]
    )
    message = rejected(session, path)
    assert "record 2: field 'output' is missing" in message


def test_a_sharegpt_conversation_ending_with_the_human_is_rejected(
    session: Session, tmp_path: Path
) -> None:
    records = [
        {
            "id": "a",
            "conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}],
        },
        {
            "id": "b",
            "conversations": [
                {"from": "human", "value": "Q"},
                {"from": "gpt", "value": "A"},
                {"from": "human", "value": "And?"},
            ],
        },
    ]
    message = rejected(session, write_json(tmp_path / "conv.json", records))
    assert "record 2: field 'conversations' does not end with an assistant response" in message


def test_every_bad_record_is_listed(session: Session, tmp_path: Path) -> None:
    records = [alpaca_record(i) for i in range(10)]
    for i in (2, 5, 8):
        del records[i]["output"]
    message = rejected(session, write_jsonl(tmp_path / "bad.jsonl", records))
    for line in (3, 6, 9):
        assert f"line {line}: field 'output' is missing" in message
    assert "3 of 10 records are invalid" in message
    assert "--skip-invalid" in message


def test_rejection_writes_nothing_even_after_good_records(session: Session, tmp_path: Path) -> None:
    # More good records than one SQLite batch before the bad one.
    records = [alpaca_record(i) for i in range(6_000)] + [{"instruction": "x"}]
    dataset = make_dataset(session)
    with pytest.raises(ImportRejected) as caught:
        import_file(session, dataset, write_jsonl(tmp_path / "late.jsonl", records))
    assert "line 6001: field 'output' is missing" in caught.value.message
    assert count(session, dataset) == 0


def test_a_bom_file_imports(session: Session, tmp_path: Path) -> None:
    records = [alpaca_record(i) for i in range(3)]
    for suffix, writer in (("json", write_json), ("jsonl", write_jsonl)):
        path = writer(tmp_path / f"bom.{suffix}", records)
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
        dataset = make_dataset(session)
        summary = import_file(session, dataset, path)
        assert (summary.new, summary.invalid) == (3, 0), suffix
        assert examples(session, dataset)[0].instruction == "Say the number 0."


def test_a_crlf_jsonl_file_imports(session: Session, tmp_path: Path) -> None:
    records = [alpaca_record(i) for i in range(3)]
    path = tmp_path / "crlf.jsonl"
    path.write_bytes("".join(json.dumps(r) + "\r\n" for r in records).encode())
    dataset = make_dataset(session)
    summary = import_file(session, dataset, path)
    assert (summary.format, summary.new, summary.invalid) == ("alpaca", 3, 0)
    assert [e.output for e in examples(session, dataset)] == [r["output"] for r in records]


def test_skip_invalid_imports_the_good_records_and_counts_the_bad(
    session: Session, tmp_path: Path
) -> None:
    records = [
        alpaca_record(1),
        {"instruction": "x", "output": 3},
        alpaca_record(2),
        alpaca_record(1),
        {"instruction": "no answer"},
    ]
    path = write_jsonl(tmp_path / "mixed.jsonl", records)
    dataset = make_dataset(session)
    summary = import_file(session, dataset, path, skip_invalid=True)
    assert (summary.read, summary.new, summary.duplicate, summary.invalid) == (5, 2, 1, 2)
    assert summary.errors == [
        "line 2: field 'output' must be a string, got a number",
        "line 5: field 'output' is missing",
    ]
    assert "2 new, 1 duplicate, 2 invalid" in summary.line()
    assert summary.counts() == {
        "read": 5,
        "new": 2,
        "duplicate": 1,
        "invalid": 2,
        "format": "alpaca",
    }
    assert count(session, dataset) == 2


def test_summary_line() -> None:
    summary = ImportSummary("pool", "alpaca", read=12_345, new=12_000, duplicate=300, invalid=45)
    assert summary.line() == (
        "pool: 12,000 new, 300 duplicate, 45 invalid (12,345 records read as alpaca)"
    )


def test_unknown_format_and_missing_file_are_invalid_input(
    session: Session, tmp_path: Path
) -> None:
    dataset = make_dataset(session)
    with pytest.raises(InvalidInput, match="unknown format 'yaml'"):
        import_file(
            session, dataset, write_json(tmp_path / "a.json", [alpaca_record(1)]), fmt="yaml"
        )
    with pytest.raises(InvalidInput, match="no such file"):
        import_file(session, dataset, tmp_path / "missing.json")


# ---------------------------------------------------------------- format detection and mapping

AUTO_CASES = [
    ("alpaca.json", [{"instruction": "I", "input": "", "output": "O"}], "alpaca"),
    (
        "lima.json",
        [{"instruction": "I", "input": "", "output": "O", "history": [["a", "b"]]}],
        "lima",
    ),
    (
        "dolly.jsonl",
        [{"instruction": "I", "context": "", "response": "R", "category": "c"}],
        "dolly",
    ),
    (
        "sharegpt.json",
        [
            {
                "id": "1",
                "conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}],
            }
        ],
        "sharegpt",
    ),
    (
        "openai.jsonl",
        [{"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]}],
        "openai",
    ),
]


@pytest.mark.parametrize(("name", "records", "fmt"), AUTO_CASES)
def test_auto_detects_each_format(
    session: Session, tmp_path: Path, name: str, records: list[dict], fmt: str
) -> None:
    writer = write_jsonl if name.endswith(".jsonl") else write_json
    path = writer(tmp_path / name, records)
    dataset = make_dataset(session)
    summary = import_file(session, dataset, path, fmt="auto")
    assert (summary.format, summary.new) == (fmt, 1)
    assert examples(session, dataset)[0].source_format == fmt
    # Naming the format gives the same result.
    named = make_dataset(session)
    assert import_file(session, named, path, fmt=fmt).new == 1


def test_auto_detects_csv_parquet_and_sift_jsonl(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, ["instruction", "input", "output"])
        writer.writeheader()
        writer.writerow(alpaca_record(1))
    source = make_dataset(session)
    summary = import_file(session, source, path)
    assert (summary.format, summary.new) == ("alpaca", 1)

    for fmt, name in (("parquet", "x.parquet"), ("jsonl", "x.jsonl")):
        out = tmp_path / name
        export_to_file(session, ExportSource("dataset", source.id), ExportOptions(fmt), out)
        target = make_dataset(session)
        summary = import_file(session, target, out)
        assert (summary.format, summary.new) == ("sift", 1), fmt
        assert examples(session, target)[0].instruction == "Say the number 1."


def test_a_named_format_that_does_not_match_rejects_every_record(
    session: Session, tmp_path: Path
) -> None:
    path = write_json(tmp_path / "alpaca.json", [alpaca_record(1)])
    message = rejected(session, path, fmt="sharegpt")
    assert "record 1: field 'conversations' must be a non-empty list" in message


def test_mapping_renames_columns_of_generic_jsonl(session: Session, tmp_path: Path) -> None:
    records = [
        {"question": f"What is {i}?", "answer": f"It is {i}.", "topic": "math"} for i in range(4)
    ]
    path = write_jsonl(tmp_path / "qa.jsonl", records)
    dataset = make_dataset(session)
    with pytest.raises(ImportRejected, match="line 1: cannot tell the format"):
        import_file(session, dataset, path)
    summary = import_file(
        session, dataset, path, mapping={"instruction": "question", "output": "answer"}
    )
    assert (summary.format, summary.new) == ("alpaca", 4)
    rows = examples(session, dataset)
    assert [(e.instruction, e.output) for e in rows] == [
        (r["question"], r["answer"]) for r in records
    ]
    assert rows[0].meta == {"topic": "math"}
    assert rows[0].messages == [
        {"role": "user", "content": "What is 0?"},
        {"role": "assistant", "content": "It is 0."},
    ]


def test_source_option_fills_records_that_name_none(session: Session, tmp_path: Path) -> None:
    records = [alpaca_record(1), alpaca_record(2, source="wikihow")]
    dataset = make_dataset(session)
    import_file(session, dataset, write_json(tmp_path / "s.json", records), source="alpaca")
    assert [e.source for e in examples(session, dataset)] == ["alpaca", "wikihow"]


def test_progress_is_reported_to_the_end(session: Session, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "p.jsonl", [alpaca_record(i) for i in range(4_500)])
    calls: list[tuple[int, int, int]] = []
    import_file(session, make_dataset(session), path, progress=lambda *a: calls.append(a))
    size = path.stat().st_size
    assert [c[0] for c in calls] == [2_000, 4_000, 4_500]
    assert calls[-1] == (4_500, size, size)
    assert all(c[2] == size for c in calls)
