"""`sift db import-sqlite` on a database made by the previous release: the real migrations up to
0007 on a SQLite file, every table filled, copied into a migrated PostgreSQL database."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from alembic import command
from sqlalchemy import Connection, Engine, MetaData, create_engine, func, select, text
from typer.testing import CliRunner, Result

from app.entrypoints.cli import cli
from app.models import User
from app.platform.db import get_engine, transaction
from app.platform.vectors.index import vector_index_name
from tests.conftest import DATA, alembic_config, migrated_database, reset_caches
from tests.factories import alpaca_record

DATABASE = "sift_test_sqlite_import"
T0 = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)


def at(minutes: int) -> datetime:
    """A timestamp some minutes after T0 (aware, as the previous release wrote them)."""
    return T0 + timedelta(minutes=minutes)


def alpaca_records(n: int) -> list[dict[str, Any]]:
    """The first records of AlpaGasus's random 9k (real Alpaca data), or made-up ones."""
    path = DATA / "alpagasus" / "random_9k.json"
    if not path.is_file():
        return [alpaca_record(i) for i in range(n)]
    return json.loads(path.read_text(encoding="utf-8"))[:n]


def md5(value: Any) -> str:
    return hashlib.md5(json.dumps(value, sort_keys=True).encode()).hexdigest()


def unit_vector(seed: int, dim: int = 384) -> bytes:
    vector = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return (vector / np.linalg.norm(vector)).astype("<f4").tobytes()


def build_sqlite(path: Path, revision: str = "0007") -> Engine:
    """A SQLite file made by the real migrations of the SQLite releases."""
    url = f"sqlite:///{path}"
    command.upgrade(alembic_config(url), revision)
    return create_engine(url)


def examples(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for i, record in enumerate(records, start=1):
        messages = [{"role": "user", "content": record["instruction"]}]
        if record.get("input"):
            messages[0]["content"] += "\n\n" + record["input"]
        messages.append({"role": "assistant", "content": record["output"]})
        rows.append(
            {
                "id": i,
                "dataset_id": 1 if i <= 4 else 2,
                "messages": messages,
                "instruction": record["instruction"],
                "input": record.get("input", ""),
                "output": record["output"],
                "source": "alpaca" if i % 2 else "stackexchange/physics",
                "category": "general_qa" if i % 3 else None,
                "meta": {"row": i, "tags": ["real", "ünïcödé ✓"], "score": 4.5},
                "external_id": f"alpaca-{i}",
                "content_hash": md5(messages),
                "source_format": "alpaca",
                "source_keys": ["instruction", "input", "output"],
                "origin": "import" if i < 6 else "written",
                "status": ["candidate", "accepted", "rejected"][i % 3],
                "version": 1 + i % 2,
                "updated_at": at(i) if i % 2 else None,
            }
        )
    # Unicode beyond the BMP, quotes, tabs and backslashes: COPY's escaping must keep them.
    rows[-1]["output"] = 'Ça va? 日本語で答えます 🎉\ttab \\backslash "quoted"\nnew line'
    rows[-1]["messages"][-1]["content"] = rows[-1]["output"]
    return rows


def fill(conn: Connection, records: list[dict[str, Any]]) -> None:
    """Rows in every table of the 0007 schema, as the previous release wrote them."""
    tables = MetaData()
    tables.reflect(conn)
    pool = examples(records)
    hashes = [row["content_hash"] for row in pool]

    def put(name: str, *rows: dict[str, Any]) -> None:
        for row in rows:  # one by one: rows leave out different columns (their defaults)
            conn.execute(tables.tables[name].insert(), row)

    put(
        "users",
        {"id": 1, "name": "admin", "role": "admin", "password_hash": "scrypt$x", "is_active": True},
        {"id": 2, "name": "zoë", "role": "annotator", "password_hash": None, "is_active": False},
        {"id": 5, "name": "lead", "role": "lead", "password_hash": "scrypt$y", "created_at": at(1)},
    )
    put(
        "api_tokens",
        {
            "id": 3,
            "user_id": 1,
            "token_hash": "a" * 64,
            "prefix": "sift_abcd",
            "last_used_at": at(5),
        },
        {"id": 4, "user_id": 5, "token_hash": "b" * 64, "prefix": "sift_efgh", "revoked_at": at(9)},
    )
    put(
        "datasets",
        {"id": 1, "name": "alpaca-pool", "description": "AlpaGasus random 9k", "created_by_id": 1},
        {"id": 2, "name": "written", "description": "", "created_by_id": None},
    )
    put("examples", *pool)
    put(
        "revisions",
        {
            "id": 1,
            "example_id": 2,
            "user_id": 2,
            "version": 2,
            "reason": "typo",
            "before": {"output": "teh"},
            "after": {"output": "the"},
        },
    )
    put(
        "scorers",
        {
            "id": 1,
            "name": "alpagasus",
            "version": 1,
            "key": "k" * 64,
            "kind": "llm_rating",
            "prompt_template": "###Instruction:\n{instruction}",
            "model": "gpt-4o-mini",
            "provider": "openai",
            "params": {"temperature": 0, "max_tokens": 256},
        },
        {"id": 2, "name": "lima", "version": 3, "key": "h" * 64, "kind": "heuristic", "params": {}},
    )
    put(
        "jobs",
        {
            "id": 7,
            "kind": "score",
            "queue": "io",
            "params": {"scorer": "alpagasus", "dataset": "alpaca-pool"},
            "state": "succeeded",
            "done": 6,
            "total": 6,
            "counts": {"ok": 5, "parse_error": 1},
            "attempts": 1,
            "idempotency_key": "score:1:1",
            "created_by_id": 1,
            "dataset_id": 1,
            "started_at": at(10),
            "heartbeat_at": at(11),
            "finished_at": at(12),
            "budget_usd": 1.5,
            "spent_usd": 0.0123,
            "reserved_usd": 0.0,
        },
        {
            "id": 8,
            "kind": "embed",
            "queue": "cpu",
            "params": {},
            "state": "failed",
            "done": 0,
            "counts": {},
            "error": "worker lost",
            "attempts": 3,
        },
    )
    put(
        "job_chunks",
        {
            "id": 1,
            "job_id": 7,
            "index": 0,
            "params": {"ids": [1, 2, 3]},
            "state": "succeeded",
            "attempts": 1,
            "done": 3,
            "counts": {"ok": 3},
            "heartbeat_at": at(11),
            "finished_at": at(12),
        },
    )
    put(
        "scores",
        {
            "id": 1,
            "content_hash": hashes[0],
            "scorer_id": 1,
            "value": 4.5,
            "state": "ok",
            "raw": "4.5\nAccurate and helpful.",
            "details": {"first_line": "4.5"},
            "prompt_tokens": 120,
            "completion_tokens": 9,
            "cost": 0.00012,
            "latency_ms": 812.5,
            "job_id": 7,
        },
        {
            "id": 2,
            "content_hash": hashes[1],
            "scorer_id": 1,
            "value": None,
            "state": "parse_error",
            "raw": "I would rate it highly.",
            "details": {},
            "prompt_tokens": 110,
            "completion_tokens": 7,
            "cost": 0.0001,
        },
        {
            "id": 3,
            "content_hash": hashes[2],
            "scorer_id": 2,
            "value": -1.0e-7,
            "state": "ok",
            "details": {"length": 1234},
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "cost": 0.0,
        },
    )
    put(
        "embeddings",
        *[
            {
                "id": i + 1,
                "content_hash": h,
                "model": "all-MiniLM-L6-v2",
                "dim": 384,
                "vector": unit_vector(i),
            }
            for i, h in enumerate(hashes)
        ],
        {
            "id": 40,
            "content_hash": hashes[0],
            "model": "tiny",
            "dim": 8,
            "vector": unit_vector(99, 8),
        },
    )
    put(
        "llm_calls",
        {
            "id": 1,
            "request_hash": "r" * 64,
            "endpoint": "openai",
            "model": "gpt-4o-mini",
            "request": {
                "messages": [{"role": "user", "content": "Rate: ünïcödé"}],
                "temperature": 0,
            },
            "response": {"choices": [{"message": {"content": "4.5"}}]},
            "response_text": "4.5",
            "prompt_tokens": 120,
            "completion_tokens": 3,
            "cost": 0.0001,
            "latency_ms": 500.0,
            "state": "done",
        },
        {
            "id": 2,
            "request_hash": "s" * 64,
            "endpoint": "local",
            "model": "smollm2",
            "request": {"messages": []},
            "response": None,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "cost": 0.0,
            "state": "pending",
            "lease_until": at(30),
        },
    )
    put(
        "collections",
        {
            "id": 1,
            "name": "lima-1000",
            "description": "the set",
            "target_size": 1000,
            "quotas": {"alpaca": 600, "stackexchange/physics": 400},
            "recipes": [{"method": "deita", "budget": 6}],
            "guidelines": "# Guidelines\nNo first person.",
            "created_by_id": 5,
        },
    )
    put(
        "collection_items",
        {
            "id": 1,
            "collection_id": 1,
            "example_id": 1,
            "added_by_id": 5,
            "recipe": None,
            "reason": "by hand",
        },
        {"id": 2, "collection_id": 1, "example_id": 2, "recipe": "deita", "reason": "score 4.5"},
    )
    put(
        "selections",
        {
            "id": 1,
            "name": "deita-6",
            "method": "deita",
            "dataset_id": 1,
            "params": {"budget": 6, "threshold": 0.9},
        },
    )
    put(
        "duplicate_clusters",
        {
            "id": 1,
            "dataset_id": 1,
            "method": "minhash",
            "params": {"threshold": 0.8},
            "representative_id": 1,
            "size": 2,
        },
    )
    put(
        "duplicate_members",
        {"id": 1, "cluster_id": 1, "example_id": 1},
        {"id": 2, "cluster_id": 1, "example_id": 3},
    )
    put(
        "review_decisions",
        {
            "id": 1,
            "example_id": 2,
            "user_id": 2,
            "collection_id": 1,
            "action": "edit",
            "reason": "fixed a typo",
            "status_before": "candidate",
            "revision_id": 1,
        },
        {
            "id": 2,
            "example_id": 3,
            "user_id": None,
            "collection_id": None,
            "action": "reject",
            "reason": "",
            "status_before": "candidate",
            "undone_at": at(40),
        },
    )
    put("review_leases", {"example_id": 4, "user_id": 2, "expires_at": at(45)})
    put(
        "generation_provenance",
        {
            "id": 1,
            "example_id": 6,
            "method": "evol-instruct",
            "round": 2,
            "parent_example_id": 1,
            "prompt": "Rewrite the prompt to be more complex.",
            "endpoint": "local",
            "model": "smollm2",
            "job_id": 7,
            "variant_group": 3,
            "details": {"operation": "deepening"},
        },
    )
    put(
        "snapshots",
        {
            "id": 1,
            "collection_id": 1,
            "digest": "d" * 64,
            "example_count": 2,
            "note": "v1",
            "created_by_id": 5,
        },
    )
    put(
        "snapshot_items",
        *[
            {
                key: value
                for key, value in {
                    **row,
                    "snapshot_id": 1,
                    "position": n,
                    "example_id": row["id"],
                    "id": n + 1,
                }.items()
                if key not in {"dataset_id", "origin", "status", "version", "updated_at"}
            }
            for n, row in enumerate(pool[:2])
        ],
    )
    put(
        "training_runs",
        {
            "id": 1,
            "snapshot_id": 1,
            "base_model": "/models/smollm2",
            "method": "lora",
            "params": {"lr": 2e-4, "epochs": 3, "r": 8},
            "state": "succeeded",
            "output_dir": "/runs/1",
            "artifacts": {"adapter": "/runs/1/adapter"},
            "logs": "step 1 loss 2.3\nstep 2 loss 2.1\n",
            "job_id": 7,
            "created_by_id": 5,
            "started_at": at(50),
            "finished_at": at(55),
            "idempotency_key": "train:1",
        },
    )
    put(
        "training_metrics",
        {
            "id": 1,
            "run_id": 1,
            "step": 1,
            "loss": 2.3,
            "learning_rate": 2e-4,
            "tokens_per_s": 1500.5,
            "epoch": 0.5,
        },
        {
            "id": 2,
            "run_id": 1,
            "step": 2,
            "loss": 2.1,
            "learning_rate": None,
            "tokens_per_s": None,
            "epoch": 1.0,
        },
    )
    put(
        "eval_test_sets",
        {
            "id": 1,
            "name": "vicuna",
            "format": "vicuna",
            "source": "vicuna_test_set.jsonl",
            "prompt_count": 1,
            "max_turns": 1,
            "digest": "e" * 64,
        },
    )
    put(
        "eval_prompts",
        {
            "id": 1,
            "test_set_id": 1,
            "position": 0,
            "prompt_id": "1",
            "turns": ["How can I improve my time management skills?"],
            "category": "generic",
            "reference": None,
            "meta": {},
        },
    )
    put(
        "eval_runs",
        {
            "id": 1,
            "model_a": "run:1",
            "model_b": "openai:gpt-4o-mini",
            "test_set": "vicuna",
            "judge": "gpt-4",
            "params": {"both_orders": True},
            "state": "succeeded",
            "wins": 1,
            "ties": 0,
            "losses": 0,
            "errors": 0,
            "job_id": 7,
            "created_by_id": 5,
            "finished_at": at(70),
            "test_set_id": 1,
        },
    )
    put(
        "eval_items",
        {
            "id": 1,
            "run_id": 1,
            "prompt_id": "1",
            "prompt": "How can I improve my time management skills?",
            "verdict_ab": "A",
            "verdict_ba": "tie",
            "verdict": "win",
            "raw": {"ab": "[[A]]", "ba": "[[C]]"},
            "position": 0,
            "turns": ["How can I improve my time management skills?"],
            "category": "generic",
            "answers_a": ["Plan your day."],
            "answers_b": ["Use a calendar."],
            "judge_ab": "[[A]]",
            "judge_ba": "[[C]]",
            "state": "done",
        },
    )
    put(
        "eval_answers",
        {
            "id": 1,
            "key": "q" * 64,
            "model": "run:1",
            "turns": ["Plan your day."],
            "settings": {"temperature": 0.7},
            "prompt_tokens": 20,
            "completion_tokens": 5,
            "cost": 0.0,
        },
    )


def plain(value: Any) -> Any:
    """A value in a form both databases read back alike."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, bytes):  # SQLite's float32 embedding bytes
        return np.frombuffer(value, dtype="<f4").tolist()
    return value


def vector(value: Any) -> list[float]:
    """An embedding as float32 values, from bytes or from what pgvector reads back."""
    if isinstance(value, bytes):
        return np.frombuffer(value, dtype="<f4").tolist()
    return np.asarray(value, dtype=np.float32).tolist()


def table_rows(conn: Connection, metadata: MetaData, name: str) -> list[dict[str, Any]]:
    table = metadata.tables[name]
    order = list(table.primary_key.columns)
    rows = conn.execute(select(table).order_by(*order)).mappings()
    return [
        {key: vector(value) if key == "vector" else plain(value) for key, value in row.items()}
        for row in rows
    ]


def row_counts(engine: Engine, names: list[str]) -> dict[str, int]:
    with engine.connect() as conn:
        return {n: conn.scalar(text(f'SELECT count(*) FROM "{n}"')) or 0 for n in names}


@pytest.fixture
def postgres(monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """The configured database: migrated to the head and empty."""
    monkeypatch.setenv("SIFT_DATABASE_URL", migrated_database(DATABASE))
    monkeypatch.setenv("COLUMNS", "200")
    reset_caches()
    yield get_engine()
    get_engine().dispose()
    monkeypatch.undo()
    reset_caches()


def sift(*args: object) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_import_copies_every_table_once(tmp_path: Path, postgres: Engine) -> None:
    path = tmp_path / "sift.db"
    old = build_sqlite(path)
    with old.begin() as conn:
        fill(conn, alpaca_records(6))
        # An orphan the old release could not have written: the import must leave nothing.
        conn.execute(text("PRAGMA foreign_keys = OFF"))
        conn.execute(
            text("INSERT INTO duplicate_members (id, cluster_id, example_id) VALUES (9, 1, 999)")
        )
    source = MetaData()
    source.reflect(old)
    names = sorted(n for n in source.tables if n != "alembic_version")
    assert {n: c for n, c in row_counts(old, names).items() if c == 0} == {}, "fill every table"

    refused = sift("db", "import-sqlite", path)
    assert refused.exit_code == 1
    assert "nothing was imported: table duplicate_members" in refused.output
    assert set(row_counts(postgres, names).values()) == {0}

    with old.begin() as conn:
        conn.execute(text("DELETE FROM duplicate_members WHERE id = 9"))
    result = sift("db", "import-sqlite", path)
    assert result.exit_code == 0, result.output
    assert (
        f"imported {sum(row_counts(old, names).values()):,} rows in {len(names)} tables"
        in result.output
    )
    assert "examples" in result.output and "eval_answers" in result.output

    target = MetaData()
    target.reflect(postgres)
    with old.connect() as before, postgres.connect() as after:
        for name in names:
            rows = table_rows(before, source, name)
            # Columns added by later migrations (at their defaults) are not compared.
            columns = source.tables[name].columns.keys()
            copied = [{c: row[c] for c in columns} for row in table_rows(after, target, name)]
            assert copied == rows, name
        # Every model's vectors have their HNSW index, the bundled model's and the others.
        for model in ("all-MiniLM-L6-v2", "tiny"):
            index = after.scalar(select(func.to_regclass(vector_index_name(model))))
            assert index is not None, model
    old.dispose()


def test_sequences_continue_after_the_largest_id(tmp_path: Path, postgres: Engine) -> None:
    path = tmp_path / "sift.db"
    old = build_sqlite(path)
    with old.begin() as conn:
        fill(conn, alpaca_records(6))
    old.dispose()
    assert sift("db", "import-sqlite", path).exit_code == 0

    with transaction(postgres) as session:
        user = User(name="new after import", role="annotator")
        session.add(user)
        session.flush()
        assert user.id == 6
        serial = session.execute(
            text(
                "SELECT table_name, pg_get_serial_sequence(quote_ident(table_name), 'id') "
                "FROM information_schema.columns WHERE table_schema = current_schema() "
                "AND column_name = 'id' AND column_default LIKE 'nextval(%'"
            )
        ).all()
        assert len(serial) >= 25
        for table, sequence in serial:
            largest = session.scalar(text(f'SELECT coalesce(max(id), 0) FROM "{table}"'))
            assert session.scalar(text("SELECT nextval(:s)"), {"s": sequence}) == largest + 1, table


def test_a_second_import_is_refused(tmp_path: Path, postgres: Engine) -> None:
    path = tmp_path / "sift.db"
    old = build_sqlite(path)
    with old.begin() as conn:
        fill(conn, alpaca_records(6))
    old.dispose()
    assert sift("db", "import-sqlite", path).exit_code == 0
    before = row_counts(postgres, ["users", "examples", "embeddings"])

    again = sift("db", "import-sqlite", path)
    assert again.exit_code == 1
    assert "already holds data" in again.output and "once" in again.output
    assert len(again.output.strip().splitlines()) == 1
    assert row_counts(postgres, ["users", "examples", "embeddings"]) == before


def test_files_that_are_not_a_sift_database_are_refused(tmp_path: Path, postgres: Engine) -> None:
    text_file = tmp_path / "notes.db"
    text_file.write_text("not a database", encoding="utf-8")
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE things (id INTEGER PRIMARY KEY)")
    older = tmp_path / "older.db"
    build_sqlite(older, "0006").dispose()

    for path, message in [
        (tmp_path / "missing.db", "no such file"),
        (text_file, "is not a SQLite database"),
        (other, "is not a Sift database"),
        (older, "is at schema revision 0006, not 0007"),
    ]:
        result = sift("db", "import-sqlite", path)
        assert result.exit_code == 1, path
        assert message in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
    assert row_counts(postgres, ["users"]) == {"users": 0}


def test_values_postgresql_cannot_hold_are_repaired_and_counted(
    tmp_path: Path, postgres: Engine
) -> None:
    path = tmp_path / "sift.db"
    old = build_sqlite(path)
    with old.begin() as conn:
        fill(conn, alpaca_records(6))
        # What Python's json and a careless import could leave in the old file.
        conn.execute(
            text("UPDATE examples SET output = :output, meta = :meta WHERE id = 1"),
            {
                "output": "a\x00b",
                "meta": '{"loss": NaN, "name": "BaNaNa", "n\\u0000ul": [Infinity, 1]}',
            },
        )
        conn.execute(text("""UPDATE examples SET meta = '{"fruit": "BaNaNa"}' WHERE id = 2"""))
    old.dispose()

    result = sift("db", "import-sqlite", path)
    assert result.exit_code == 0, result.output
    assert "2 values without NUL characters or NaN" in result.output
    with postgres.connect() as conn:
        rows = conn.execute(text("SELECT id, output, meta FROM examples WHERE id < 3 ORDER BY id"))
        first, second = rows.all()
    assert first.output == "ab"
    assert first.meta == {"loss": None, "name": "BaNaNa", "nul": [None, 1]}
    assert second.meta == {"fruit": "BaNaNa"}
