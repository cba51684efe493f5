"""Streaming readers hold no record over the limit whole (finding 5 of the hardening issue: a
one-record 300 MB JSON file, or a 27 KB Parquet file that expands to 300 MB, took a worker to
1.1-1.5 GB)."""

from __future__ import annotations

import io
import json
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from app.datasets import json_split
from app.datasets.json_split import JsonListSplitter, SplitError, TooLarge

LIMIT = 2_000_000


def _records(count: int) -> list[object]:
    rng = random.Random(7)
    records: list[object] = [
        {
            "instruction": 'quote " backslash \\ newline \n é ' * rng.randint(0, 40),
            "output": "x" * rng.randint(0, 4000),
            "nested": [1, {"a": [2, "]}{["]}, None, True],
        }
        for _ in range(count)
    ]
    return [*records, 5, "a string ]", None, [1, 2], -1.5e3, False]


@pytest.mark.parametrize("chunk", [1, 7, 4096])
@pytest.mark.parametrize("indent", [None, 2])
def test_the_splitter_finds_every_record_across_any_read_boundary(
    monkeypatch: pytest.MonkeyPatch, chunk: int, indent: int | None
) -> None:
    records = _records(60)
    monkeypatch.setattr(json_split, "CHUNK", chunk)
    text = json.dumps(records, indent=indent, ensure_ascii=False).encode()
    split = list(JsonListSplitter(io.BytesIO(text), LIMIT))
    assert [json.loads(raw) for raw in split if isinstance(raw, bytes)] == records


@pytest.mark.parametrize("chunk", [3, 4096])
def test_a_record_over_the_limit_is_measured_not_kept(
    monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    monkeypatch.setattr(json_split, "CHUNK", chunk)
    records = _records(40)
    text = json.dumps(records, ensure_ascii=False).encode()
    split = list(JsonListSplitter(io.BytesIO(text), 3000))
    sizes = [len(json.dumps(r, ensure_ascii=False).encode()) for r in records]
    assert [s.size for s in split if isinstance(s, TooLarge)] == [s for s in sizes if s > 3000]
    kept = [json.loads(raw) for raw in split if isinstance(raw, bytes)]
    assert kept == [r for r, s in zip(records, sizes, strict=True) if s <= 3000]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b'[{"a": "b"', "truncated"),
        (b'[{"a": "b\\', "truncated"),
        (b'[{"a": "b"} {"c": 1}]', "expected ','"),
        (b'{"a": 1}', "not a JSON list"),
    ],
)
def test_a_broken_list_says_where(content: bytes, reason: str) -> None:
    with pytest.raises(SplitError, match=reason):
        list(JsonListSplitter(io.BytesIO(content), LIMIT))


def _peak_growth_mb(path: Path, container: str) -> tuple[float, list[str]]:
    """Read `path` in a fresh process: the peak memory that reading took (MB: Python's
    allocations, traced, and Arrow's memory pool), and each record's outcome."""
    script = textwrap.dedent(f"""
        import json, tracemalloc
        from pathlib import Path
        import pyarrow
        from app.datasets.readers import RecordStream
        tracemalloc.start()
        outcomes = [
            (str(r.error) if r.error else "ok")
            for r in RecordStream(Path({str(path)!r}), {container!r}, {LIMIT})
        ]
        peak = tracemalloc.get_traced_memory()[1] + pyarrow.default_memory_pool().max_memory()
        print(json.dumps([peak / 2**20, outcomes]))
    """)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=300
    )
    growth, outcomes = json.loads(done.stdout)
    return growth, outcomes


@pytest.mark.parametrize("container", ["json", "jsonl"])
def test_a_100_mb_record_is_skipped_in_flat_memory(tmp_path: Path, container: str) -> None:
    huge = '{"instruction": "Repeat.", "output": "' + "x" * 100_000_000 + '"}'
    small = json.dumps({"instruction": "Hi.", "output": "Hello."})
    path = tmp_path / f"huge.{container}"
    with path.open("w") as out:
        out.write(f"[{huge}, {small}]" if container == "json" else f"{huge}\n{small}\n")
    growth, outcomes = _peak_growth_mb(path, container)
    assert "over the limit of 2,000,000" in outcomes[0] and outcomes[1] == "ok"
    assert growth < 40, f"reading grew the process by {growth:.0f} MB"


def test_a_parquet_bomb_is_read_in_small_batches(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = 2048
    table = pa.table({"instruction": ["Say x."] * rows, "output": ["x" * 150_000] * rows})
    path = tmp_path / "bomb.parquet"
    pq.write_table(table, path, compression="zstd", row_group_size=rows)
    assert path.stat().st_size < 2_000_000  # 300 MB of text, stored small
    growth, outcomes = _peak_growth_mb(path, "parquet")
    assert outcomes == ["ok"] * rows
    assert growth < 150, f"reading grew the process by {growth:.0f} MB"


def test_a_parquet_row_over_the_limit_is_reported_by_number(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    outputs = ["fine", "y" * 3_000_000, "also fine"]
    path = tmp_path / "rows.parquet"
    pq.write_table(pa.table({"instruction": ["a", "b", "c"], "output": outputs}), path)
    _, outcomes = _peak_growth_mb(path, "parquet")
    assert outcomes[0] == "ok" and outcomes[2] == "ok"
    assert "over the limit of 2,000,000" in outcomes[1]
