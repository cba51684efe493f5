"""Reading a SQLite-era Sift database: the checks that it is one, at the last SQLite schema
revision, and its tables in the order their foreign keys allow copying them."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

from app.platform.errors import InvalidInput

# The last schema revision of the SQLite releases; later migrations are PostgreSQL-only.
SQLITE_REVISION = "0007"
SQLITE_HEADER = b"SQLite format 3\x00"


@dataclass(frozen=True)
class SourceTable:
    """One table of the SQLite file: its columns, the tables it refers to, its row count."""

    name: str
    columns: tuple[str, ...]
    parents: frozenset[str]
    rows: int


def check_sqlite_file(path: Path) -> None:
    """Raise InvalidInput unless `path` is a Sift SQLite database at revision 0007."""
    with open_sqlite(path):
        pass


@contextmanager
def open_sqlite(path: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection to a Sift SQLite file at revision 0007, closed on exit."""
    _check_header(path)
    # Read-only: the old file stays as it was, whatever happens here.
    with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as source:
        _check_revision(source, path)
        yield source


def _check_header(path: Path) -> None:
    if not path.is_file():
        raise InvalidInput(f"no such file: {path}")
    with path.open("rb") as file:
        if file.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
            raise InvalidInput(f"{path} is not a SQLite database (expected a Sift .sift/sift.db)")


def _check_revision(source: sqlite3.Connection, path: Path) -> None:
    try:
        rows = source.execute("SELECT version_num FROM alembic_version").fetchall()
    except sqlite3.DatabaseError as exc:
        raise InvalidInput(
            f"{path} is not a Sift database (no schema revision in it: {exc})"
        ) from exc
    revision = rows[0][0] if len(rows) == 1 else None
    if revision != SQLITE_REVISION:
        raise InvalidInput(
            f"{path} is at schema revision {revision or 'unknown'}, not {SQLITE_REVISION}: "
            f"run `sift db upgrade` on it with the last SQLite release first"
        )


def source_tables(source: sqlite3.Connection) -> list[SourceTable]:
    """Every data table of the SQLite file, as the file lists them."""
    names = [
        row[0]
        for row in source.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite_%' AND name != 'alembic_version' ORDER BY name"
        )
    ]
    return [_describe(source, name) for name in names]


def _describe(source: sqlite3.Connection, name: str) -> SourceTable:
    quoted = sqlite_name(name)
    columns = tuple(row[1] for row in source.execute(f"PRAGMA table_info({quoted})"))
    parents = frozenset(row[2] for row in source.execute(f"PRAGMA foreign_key_list({quoted})"))
    rows = source.execute(f"SELECT count(*) FROM {quoted}").fetchone()[0]
    return SourceTable(name, columns, parents, rows)


def copy_order(tables: Sequence[SourceTable]) -> list[SourceTable]:
    """The tables, every one after the tables its foreign keys refer to."""
    by_name = {table.name: table for table in tables}
    graph = {t.name: {p for p in t.parents if p in by_name and p != t.name} for t in tables}
    try:
        return [by_name[name] for name in TopologicalSorter(graph).static_order()]
    except CycleError as exc:
        raise InvalidInput(f"the SQLite file's foreign keys form a cycle: {exc.args[1]}") from exc


def sqlite_name(name: str) -> str:
    """A table name quoted for SQLite."""
    return '"' + name.replace('"', '""') + '"'
