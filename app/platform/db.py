"""Engines, sessions and the one-transaction-per-unit-of-work helpers (PostgreSQL only)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Annotated, Any, TypeVar

from fastapi import Depends
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from app.platform.config import get_settings

T = TypeVar("T")
_AFTER_COMMIT = "sift_after_commit"

# Lock waits that end a statement instead of stalling it: lock not available (lock_timeout),
# deadlock detected, serialization failure. The transaction is safe to run again as a whole.
TRANSIENT_SQLSTATES = frozenset({"55P03", "40P01", "40001"})
# Every statement waits at most this long for a row or table lock; a unit of work that hits it
# is retried (jobs) or answered 503 with Retry-After (requests), never left hanging.
LOCK_TIMEOUT_MS = 5_000


def database_url() -> str:
    """The configured database, or the embedded PostgreSQL server of the data folder."""
    settings = get_settings()
    if settings.database_url:
        return settings.sqlalchemy_url
    from app.platform.embedded_db import embedded_url

    return embedded_url(settings.data_dir.resolve())


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for a PostgreSQL URL whose every connection has a lock timeout."""
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    settings = get_settings()
    kwargs.setdefault("pool_size", settings.db_pool_size)
    kwargs.setdefault("max_overflow", settings.db_pool_overflow)
    kwargs.setdefault("pool_timeout", settings.db_pool_timeout_s)
    connect_args = {
        # Custom plans always: a statement psycopg has prepared (its fifth run) would otherwise
        # get PostgreSQL's generic plan, made for no dataset, user or time in particular. On a
        # studio whose datasets differ a thousandfold in size that plan can be the wrong one:
        # the queue searched for "explain the differ" went from 33 to 115-360 ms at its eleventh
        # load, on a million examples.
        "options": (
            f"-c lock_timeout={LOCK_TIMEOUT_MS} -c application_name=sift "
            "-c plan_cache_mode=force_custom_plan"
        ),
        # An unreachable host fails in seconds (503) instead of hanging the request.
        "connect_timeout": settings.db_connect_timeout_s,
    }
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args, **kwargs)


@lru_cache
def get_engine() -> Engine:
    """The process-wide engine for the configured database."""
    return make_engine(database_url())


def session_factory(engine: Engine | None = None) -> sessionmaker[Session]:
    """A session factory bound to an engine (the configured one by default)."""
    return sessionmaker(bind=engine or get_engine(), expire_on_commit=False)


@contextmanager
def transaction(engine: Engine | None = None) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    with session_factory(engine)() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def is_transient(exc: BaseException) -> bool:
    """True for a lock timeout, a deadlock or a serialization failure (safe to run again)."""
    return (
        isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) in TRANSIENT_SQLSTATES
    )


def retrying(work: Callable[[Session], T], *, tries: int = 5, engine: Engine | None = None) -> T:
    """Run `work` in a transaction of its own, again (after a short pause) when it met a lock
    timeout or a deadlock; the last failure is raised."""
    for attempt in range(1, tries + 1):
        try:
            with transaction(engine) as session:
                return work(session)
        except DBAPIError as exc:
            if attempt == tries or not is_transient(exc):
                raise
            time.sleep(0.05 * 2**attempt)
    raise AssertionError("unreachable")


def release(session: Session) -> None:
    """End the session's transaction before slow work (a model, an endpoint): it has only
    read so far, and no snapshot or lock should outlive the read. Loaded objects stay."""
    session.commit()


def driver_connection(session: Session) -> Any:
    """The psycopg connection under the session's transaction."""
    connection = session.connection().connection.driver_connection
    assert connection is not None
    return connection


@contextmanager
def side_transaction(session: Session) -> Iterator[Session]:
    """Writes that others must see before `session` commits (a response cache, a budget).

    A short transaction of its own, committed on exit, with `synchronous_commit` off: what it
    writes is a record that can be rebuilt, so a crash that loses the last few milliseconds of
    it costs nothing but a repeat. Safe to use from any thread.
    """
    with transaction(side_engine(session.get_bind().engine)) as side:
        side.execute(text("SET LOCAL synchronous_commit = off"))
        yield side


# Side transactions have a small pool of their own: a request (or task) holding its pooled
# connection opens one, so drawing both from one pool let every request in flight hold one
# connection and wait for a second until the pool timed out (50 people signing in at once).
SIDE_POOL_SIZE = 4


@lru_cache(maxsize=16)
def _side_engine(url: str) -> Engine:
    return make_engine(url, pool_size=SIDE_POOL_SIZE, max_overflow=SIDE_POOL_SIZE)


def side_engine(engine: Engine) -> Engine:
    """The engine of side transactions for the database `engine` connects to."""
    return _side_engine(engine.url.render_as_string(hide_password=False))


def conflict_insert(table: Any) -> Any:
    """An INSERT that takes ON CONFLICT clauses."""
    return insert(table)


def upsert_where(
    session: Session, table: Any, rows: Sequence[dict[str, Any]], keys: Sequence[str], where: Any
) -> None:
    """Insert rows; a row already there under the same `keys` is replaced only where `where`
    holds (a failed score or verdict is tried again, a good one is kept)."""
    if not rows:
        return
    statement = insert(table)
    replace = {column: statement.excluded[column] for column in rows[0] if column not in keys}
    session.execute(
        statement.on_conflict_do_update(index_elements=list(keys), set_=replace, where=where),
        list(rows),
    )


def get_session() -> Iterator[Session]:
    """FastAPI dependency: one transaction per request, committed when the route returns."""
    with transaction() as session:
        yield session


# A route parameter: the request's session (one transaction per request). Scope "function":
# the transaction commits before the response is sent, so that a failed commit answers as an
# error instead of after a success was sent, and the page a redirect leads to reads what the
# request wrote.
DB = Annotated[Session, Depends(get_session, scope="function")]
# For a response streamed from the database (an export): its own session, open until the last
# byte is sent. Only for reads.
StreamDB = Annotated[Session, Depends(get_session, scope="request")]


def on_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run `callback` once the session's transaction has committed: never if it rolls back,
    nor if the savepoint it was registered in rolls back."""
    registered_in = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(_AFTER_COMMIT, []).append((registered_in, callback))


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    for _, callback in session.info.pop(_AFTER_COMMIT, []):
        callback()


@event.listens_for(Session, "after_soft_rollback")
def _drop_after_rollback(session: Session, rolled_back: SessionTransaction) -> None:
    pending = session.info.get(_AFTER_COMMIT)
    if pending:
        session.info[_AFTER_COMMIT] = [
            (where, callback) for where, callback in pending if not _within(where, rolled_back)
        ]


def _within(transaction: SessionTransaction | None, ancestor: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is ancestor:
            return True
        transaction = transaction.parent
    return False
