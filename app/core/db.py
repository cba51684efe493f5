"""Engines, sessions and the one-transaction-per-unit-of-work helper."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import get_settings

F = TypeVar("F")


def _configure_sqlite(engine: Engine) -> None:
    # pysqlite's own transaction handling breaks SAVEPOINT; take it over so that
    # nested transactions (and rolled-back test transactions) behave as on PostgreSQL.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # IMMEDIATE takes the write lock at once: a writer that read first would otherwise
        # fail outright if another connection committed in between (WAL snapshot rule).
        mode = connection.get_execution_options().get("sqlite_begin", "")
        connection.exec_driver_sql(f"BEGIN {mode}".strip())


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for a URL, with SQLite set up for WAL, foreign keys and savepoints."""
    if url.startswith("sqlite"):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


@lru_cache
def get_engine() -> Engine:
    """The process-wide engine for the configured database."""
    return make_engine(get_settings().sqlalchemy_url)


def session_factory(engine: Engine | None = None) -> sessionmaker[Session]:
    """A session factory bound to an engine (the configured one by default)."""
    return sessionmaker(bind=engine or get_engine(), expire_on_commit=False)


@lru_cache
def _writer(engine: Engine) -> Engine:
    return engine.execution_options(sqlite_begin="IMMEDIATE")


@contextmanager
def transaction(engine: Engine | None = None, *, writer: bool = False) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error.

    `writer=True` marks a unit of work that will write: on SQLite its first statement takes
    the write lock, so that it waits for another writer instead of failing when it upgrades
    from reading to writing.
    """
    engine = engine or get_engine()
    with session_factory(_writer(engine) if writer else engine)() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def driver_connection(session: Session) -> Any:
    """The DBAPI connection under the session's transaction (psycopg or sqlite3)."""
    connection = session.connection().connection.driver_connection
    assert connection is not None
    return connection


def is_postgres(session: Session) -> bool:
    """True when the session talks to PostgreSQL."""
    return session.get_bind().dialect.name == "postgresql"


@contextmanager
def side_transaction(session: Session) -> Iterator[Session]:
    """Writes that others must see before `session` commits (a response cache, a budget).

    On PostgreSQL this is a short transaction of its own, committed on exit, with
    `synchronous_commit` off: what it writes is a record that can be rebuilt, so a crash
    that loses the last few milliseconds of it costs nothing but a repeat. SQLite has one
    writer at a time and `session` holds it, so there it is a savepoint of `session`: nobody
    else could write or wait in between anyway. Safe to use from any thread on PostgreSQL;
    on SQLite only from the thread that owns `session`.
    """
    if not is_postgres(session):
        with session.begin_nested():
            yield session
        return
    with transaction(session.get_bind().engine) as side:
        side.execute(text("SET LOCAL synchronous_commit = off"))
        yield side


def conflict_insert(table: Any, dialect: str) -> Any:
    """An INSERT that takes ON CONFLICT clauses, for PostgreSQL or SQLite (`dialect`)."""
    return (postgresql if dialect == "postgresql" else sqlite).insert(table)


def upsert_where(
    session: Session, table: Any, rows: Sequence[dict[str, Any]], keys: Sequence[str], where: Any
) -> None:
    """Insert rows; a row already there under the same `keys` is replaced only where `where`
    holds (a failed score or verdict is tried again, a good one is kept)."""
    if not rows:
        return
    statement = conflict_insert(table, session.get_bind().dialect.name)
    replace = {column: statement.excluded[column] for column in rows[0] if column not in keys}
    session.execute(
        statement.on_conflict_do_update(index_elements=list(keys), set_=replace, where=where),
        list(rows),
    )


def defer_write_lock(endpoint: F) -> F:
    """Mark a route whose writes must not take SQLite's write lock before its body runs
    (cancel: it must reach the running job that holds the lock first)."""
    endpoint.defer_write_lock = True  # type: ignore[attr-defined]
    return endpoint


def get_session(request: Request) -> Iterator[Session]:
    """FastAPI dependency: one transaction per request, committed when the route returns."""
    deferred = getattr(request.scope.get("endpoint"), "defer_write_lock", False)
    writes = request.method not in ("GET", "HEAD", "OPTIONS")
    with transaction(writer=writes and not deferred) as session:
        yield session


# A route parameter: the request's session (one transaction per request). Scope "function":
# the transaction commits before the response is sent, so that a failed commit answers as an
# error instead of after a success was sent, and the page a redirect leads to reads what the
# request wrote.
DB = Annotated[Session, Depends(get_session, scope="function")]
# For a response streamed from the database (an export): its own session, open until the last
# byte is sent. Only for reads.
StreamDB = Annotated[Session, Depends(get_session, scope="request")]
