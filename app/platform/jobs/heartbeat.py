"""Heartbeats and progress of a running job or chunk, on rows that nothing else holds.

A job's or chunk's row is written by its own worker in short transactions of their own, with a
short lock timeout, and never by the unit of work that does the job: so no connection ever
waits on a lock held by another connection of the same process. A beat that meets a lock is
skipped (the next one comes soon); the sweeper takes a row silent for `job_stale_after_s` as
the sign of a dead worker.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog
from sqlalchemy import Table, text, update
from sqlalchemy.exc import DBAPIError

from app.models.base import utcnow
from app.platform.config import get_settings
from app.platform.db import is_transient, transaction

log = structlog.get_logger(__name__)
# A beat waits at most this long for a row lock; the work never waits for a beat.
BEAT_LOCK_TIMEOUT = "500ms"


def touch(table: Table, row_id: int, **values: Any) -> bool:
    """Write a heartbeat (and any progress values) to one row in a short transaction of its
    own; False when a lock or an outage got in the way (skipped, never raised)."""
    try:
        with transaction() as session:
            session.execute(text(f"SET LOCAL lock_timeout = '{BEAT_LOCK_TIMEOUT}'"))
            session.execute(
                update(table).where(table.c.id == row_id).values(heartbeat_at=utcnow(), **values)
            )
    except DBAPIError as exc:
        if not (is_transient(exc) or exc.connection_invalidated):
            log.warning("heartbeat.failed", table=table.name, id=row_id, error=str(exc.orig))
        return False
    return True


@contextmanager
def beating(table: Table, row_id: int) -> Iterator[None]:
    """Keep a row's heartbeat fresh from a thread while the block runs (a model forward pass
    or a slow endpoint may report no progress for minutes, yet the worker lives)."""
    stop = threading.Event()
    interval = get_settings().job_heartbeat_s

    def beat() -> None:
        while not stop.wait(interval):
            touch(table, row_id)

    thread = threading.Thread(target=beat, name=f"heartbeat-{table.name}-{row_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
