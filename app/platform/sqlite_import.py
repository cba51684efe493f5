"""Copy a SQLite-era Sift database (`./.sift/sift.db`, schema revision 0007) into PostgreSQL.

Every table of the file is copied, as the file itself lists them (no hand-kept list to go
stale), with its ids, in one transaction: all or nothing. Rows stream through `COPY`, a batch
at a time, so memory stays flat whatever the size of the examples table. Values keep SQLite's
text forms where PostgreSQL reads them as they are (JSON text, 0/1 booleans, UTC datetime
strings); float32 embedding bytes become pgvector text when the target column is a vector.
Afterwards every id sequence continues after the largest id copied.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from psycopg import sql
from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session

from app.platform.db import LOCK_TIMEOUT_MS, get_engine
from app.platform.errors import Conflict, InvalidInput, Unavailable
from app.platform.sqlite_source import (
    SourceTable,
    copy_order,
    open_sqlite,
    source_tables,
    sqlite_name,
)

BATCH = 5_000
VECTOR_TYPES = frozenset({"vector", "halfvec"})
JSON_TYPES = frozenset({"json", "jsonb"})
TEXT_TYPES = frozenset({"text", "varchar", "bpchar"})
# Only JSON text holding one of these is parsed and written again; the rest goes as it is.
JSON_SUSPECTS = ("NaN", "Infinity", "\\u0000")
# For building the dropped indexes again (HNSW is slow when its graph outgrows this).
INDEX_BUILD_MEMORY = "512MB"


@dataclass(frozen=True)
class TableCount:
    """Rows copied into one table."""

    table: str
    rows: int


@dataclass(frozen=True)
class ImportResult:
    """What an import copied, table by table, in the order it copied them."""

    source: Path
    tables: tuple[TableCount, ...]
    seconds: float
    repaired: int = 0  # values changed to fit PostgreSQL (see Repairs)

    @property
    def rows(self) -> int:
        """Rows copied, all tables together."""
        return sum(count.rows for count in self.tables)

    def line(self) -> str:
        """The one-line summary a command ends with."""
        repaired = (
            f" ({self.repaired:,} values without NUL characters or NaN, which PostgreSQL "
            f"cannot hold)"
            if self.repaired
            else ""
        )
        return (
            f"imported {self.rows:,} rows in {len(self.tables)} tables from {self.source} "
            f"in {self.seconds:.1f} s{repaired}"
        )


@dataclass(frozen=True)
class ImportProgress:
    """Where a running import is: its step (a table copied, an index built), rows copied of
    all rows."""

    step: str
    done: int
    total: int


ProgressCallback = Callable[[ImportProgress], None]
Converter = Callable[[Any], Any]


def import_sqlite(
    path: Path, engine: Engine | None = None, progress: ProgressCallback | None = None
) -> ImportResult:
    """Copy every table of a Sift SQLite file into the migrated, empty PostgreSQL database."""
    started, repairs = time.perf_counter(), Repairs()
    with open_sqlite(path) as source, _as_user_errors(path):
        tables = copy_order(source_tables(source))
        with (engine or get_engine()).begin() as connection:
            cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
            counts = _copy_all(source, cursor, tables, repairs, progress or (lambda _p: None))
            _index_every_model(connection)
    return ImportResult(path, tuple(counts), time.perf_counter() - started, repairs.count)


@contextmanager
def _as_user_errors(path: Path) -> Iterator[None]:
    """A database error (the transaction is rolled back) as one line, not a traceback."""
    try:
        yield
    except psycopg.errors.LockNotAvailable as exc:  # past the lock timeout
        raise Unavailable(
            "nothing was imported: the database is in use: stop `sift serve` and the workers, "
            "then run this again"
        ) from exc
    except psycopg.Error as exc:
        raise InvalidInput(f"nothing was imported: {_reason(exc)}") from exc
    except sqlite3.Error as exc:
        raise InvalidInput(f"nothing was imported: {path} could not be read: {exc}") from exc


def _copy_all(
    source: sqlite3.Connection,
    cursor: psycopg.Cursor[Any],
    tables: list[SourceTable],
    repairs: Repairs,
    progress: ProgressCallback,
) -> list[TableCount]:
    target = _target_types(cursor)
    _check_target(cursor, tables, target)
    # SQLite holds naive UTC datetime strings; PostgreSQL reads them in the session's zone.
    cursor.execute("SET LOCAL TimeZone = 'UTC'")
    cursor.execute(f"SET LOCAL maintenance_work_mem = '{INDEX_BUILD_MEMORY}'")
    names = [table.name for table in tables]
    total, done, counts = sum(t.rows for t in tables), 0, []
    with _secondary_indexes_dropped(
        cursor, names, lambda step: progress(ImportProgress(step, done, total))
    ):
        for table in tables:
            converters = [repairs.converter(target[table.name][c]) for c in table.columns]
            copied = _copy_table(source, cursor, table, converters, done, total, progress)
            counts.append(TableCount(table.name, copied))
            done += copied
    _reset_sequences(cursor, names)
    progress(ImportProgress("analyze", done, total))
    for name in names:
        # Fresh planner statistics: the pages' queries plan well from the first request.
        cursor.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(name)))
    return counts


@contextmanager
def _secondary_indexes_dropped(
    cursor: psycopg.Cursor[Any], names: list[str], step: Callable[[str], None]
) -> Iterator[None]:
    """Drop the indexes no constraint needs, and build them again once the rows are in.

    As pg_restore does: one build is far faster than a row at a time (an HNSW index took
    2 ms per embedding), and the transaction undoes the drop if anything fails."""
    cursor.execute(
        "SELECT ic.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "JOIN pg_class ic ON ic.oid = i.indexrelid "
        "JOIN pg_class t ON t.oid = i.indrelid "
        "JOIN pg_namespace n ON n.oid = t.relnamespace "
        "WHERE n.nspname = current_schema() AND t.relname = ANY(%s) "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid "
        "AND c.conrelid = i.indrelid)",
        [names],
    )
    indexes = cursor.fetchall()
    for name, _definition in indexes:
        cursor.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
    yield
    for name, definition in indexes:
        step(f"index {name}")
        cursor.execute(definition)


def _index_every_model(connection: Connection) -> None:
    """An HNSW index for each model's vectors, as the embed job makes it for a new model
    (migration 0009 made the bundled model's only): neighbours come from the index."""
    from app.platform.vectors.index import ensure_vector_index

    with Session(bind=connection) as session:
        models = session.execute(text("SELECT DISTINCT model, dim FROM embeddings")).all()
        for model, dim in models:
            ensure_vector_index(session, model, dim)


def _target_types(cursor: psycopg.Cursor[Any]) -> dict[str, dict[str, str]]:
    """Each table of the PostgreSQL schema: its columns and their type names."""
    cursor.execute(
        "SELECT c.relname, a.attname, t.typname FROM pg_attribute a "
        "JOIN pg_class c ON c.oid = a.attrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_type t ON t.oid = a.atttypid "
        "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') "
        "AND a.attnum > 0 AND NOT a.attisdropped"
    )
    types: dict[str, dict[str, str]] = {}
    for table, column, type_name in cursor.fetchall():
        types.setdefault(table, {})[column] = type_name
    return types


def _check_target(
    cursor: psycopg.Cursor[Any], tables: list[SourceTable], target: dict[str, dict[str, str]]
) -> None:
    """Refuse a database that is not migrated, or that already holds data."""
    if "alembic_version" not in target:
        raise InvalidInput("the database has no Sift schema: run `sift db upgrade` first")
    for table in tables:
        if table.name not in target:
            raise InvalidInput(f"the database has no table {table.name}: run `sift db upgrade`")
        missing = [c for c in table.columns if c not in target[table.name]]
        if missing:
            raise InvalidInput(
                f"the database has no place for {table.name}.{', '.join(missing)}: "
                f"run `sift db upgrade` first"
            )
    _lock(cursor, [t.name for t in tables])
    filled = [table.name for table in tables if _holds_rows(cursor, table.name)]
    if filled:
        raise Conflict(
            f"the database already holds data (in {', '.join(filled[:4])}"
            f"{', …' if len(filled) > 4 else ''}): import-sqlite fills an empty database only, "
            f"once; to import again, start from an empty one (stop Sift, move ./.sift/pg aside "
            f"or point SIFT_DATABASE_URL at a new database) and run it again"
        )


def _lock(cursor: psycopg.Cursor[Any], names: list[str]) -> None:
    # Nobody writes these tables until the copy commits: a second import waits, then finds
    # the data and stops. A wait past the lock timeout means Sift is running: refused.
    cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_MS}ms'")
    cursor.execute(
        sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(
            sql.SQL(", ").join(sql.Identifier(name) for name in names)
        )
    )


def _holds_rows(cursor: psycopg.Cursor[Any], name: str) -> bool:
    cursor.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(name)))
    return bool(cursor.fetchone()[0])  # type: ignore[index]


def _copy_table(
    source: sqlite3.Connection,
    cursor: psycopg.Cursor[Any],
    table: SourceTable,
    converters: list[Converter | None],
    done: int,
    total: int,
    progress: ProgressCallback,
) -> int:
    """Stream one table into PostgreSQL with COPY, a batch of rows at a time."""
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, table.columns))
    )
    columns = ", ".join(sqlite_name(column) for column in table.columns)
    rows = source.execute(f"SELECT {columns} FROM {sqlite_name(table.name)}")
    copied = 0
    progress(ImportProgress(f"copy {table.name}", done, total))
    try:
        with cursor.copy(statement) as copy:
            while batch := rows.fetchmany(BATCH):
                for row in _converted(batch, converters):
                    copy.write_row(row)
                copied += len(batch)
                progress(ImportProgress(f"copy {table.name}", done + copied, total))
    except psycopg.Error as exc:
        raise InvalidInput(f"nothing was imported: table {table.name}: {_reason(exc)}") from exc
    return copied


def _converted(batch: list[Any], converters: list[Converter | None]) -> Iterator[Sequence[Any]]:
    if not any(converters):
        yield from batch
        return
    for row in batch:
        yield [
            value if c is None or value is None else c(value)
            for c, value in zip(converters, row, strict=True)
        ]


class Repairs:
    """Values PostgreSQL cannot hold as SQLite held them, changed as little as possible and
    counted: NUL characters in text (dropped), NaN and Infinity in JSON (null)."""

    def __init__(self) -> None:
        self.count = 0

    def converter(self, type_name: str) -> Converter | None:
        """How a SQLite value becomes what COPY gives a column of this type; None: as it is.

        Integers, floats, 0/1 booleans ('1' is true to PostgreSQL), UTC datetime strings and
        bytes for bytea read as they are; float32 bytes need the vector form."""
        if type_name in VECTOR_TYPES:
            return _vector_text
        if type_name in JSON_TYPES:
            return self.json
        if type_name in TEXT_TYPES:
            return self.text
        return None

    def text(self, value: Any) -> Any:
        """The text without NUL characters (PostgreSQL text cannot hold them)."""
        if isinstance(value, str) and "\x00" in value:
            self.count += 1
            return value.replace("\x00", "")
        return value

    def json(self, value: Any) -> Any:
        """JSON text that jsonb accepts: no NaN, Infinity or \\u0000 (Python's json wrote them)."""
        if not isinstance(value, str) or not any(s in value for s in JSON_SUSPECTS):
            return value
        parsed = json.loads(value)
        cleaned = _clean_json(parsed)
        if cleaned == parsed:  # "NaN" inside a string, say: nothing to change
            return value
        self.count += 1
        return json.dumps(cleaned, ensure_ascii=False)


def _clean_json(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, list):
        return [_clean_json(item) for item in value]
    if isinstance(value, dict):
        return {key.replace("\x00", ""): _clean_json(item) for key, item in value.items()}
    return value


def _vector_text(value: bytes) -> str:
    floats = np.frombuffer(value, dtype="<f4").tolist()
    return _vector_format(len(floats)) % tuple(floats)


@lru_cache(maxsize=16)
def _vector_format(dim: int) -> str:
    # 9 significant digits read back as the very same float32 (FLT_DECIMAL_DIG); one %
    # over the whole vector is twice as fast as a repr per value.
    return "[" + ",".join(["%.9g"] * dim) + "]"


def _reset_sequences(cursor: psycopg.Cursor[Any], names: list[str]) -> None:
    """Make every id sequence of the copied tables continue after the largest id."""
    # The function only in the select list: in WHERE it may meet other schemas' tables first.
    cursor.execute(
        "SELECT table_name, column_name, "
        "pg_get_serial_sequence(quote_ident(table_name), column_name) "
        "FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = ANY(%s) "
        "AND (column_default LIKE 'nextval(%%' OR is_identity = 'YES')",
        [names],
    )
    for table, column, sequence in cursor.fetchall():
        if sequence is None:
            continue
        cursor.execute(
            sql.SQL("SELECT setval(%s, coalesce((SELECT max({}) FROM {}), 0) + 1, false)").format(
                sql.Identifier(column), sql.Identifier(table)
            ),
            [sequence],
        )


def _reason(exc: psycopg.Error) -> str:
    diag = exc.diag
    detail = f" ({diag.message_detail})" if diag.message_detail else ""
    return f"{diag.message_primary or exc}{detail}"
