"""Database writes of concurrent LLM calls, gathered per event-loop tick and run together in
one short side transaction (retried on deadlock or serialization failure), instead of two
transactions per call. The response cache and job budgets write through it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app.platform.db import side_transaction

T = TypeVar("T")
Handler = Callable[[Session, list[Any]], list[Any]]

# PostgreSQL's deadlock and serialization failures: the transaction is safe to run again.
_TRANSIENT_SQLSTATES = frozenset({"40P01", "40001"})
_TRIES = 3


class SideWriter:
    """Runs batches of work in one side transaction each (see `side_transaction`).

    Inline on the event loop's thread by default, also on PostgreSQL: a batch takes about a
    millisecond, and handing it to a thread costs more than that in GIL handoffs while the
    loop is busy with HTTP (measured: 74% against 58% of the ideal throughput at 32 in flight).
    """

    def __init__(self, session: Session, *, threaded: bool = False) -> None:
        self.session = session
        self.threaded = threaded

    async def run(self, works: Sequence[Callable[[Session], T]]) -> list[T]:
        """Run the works in order in one side transaction; their results, in order."""
        if self.threaded:
            return await asyncio.to_thread(self._run, works)
        return self._run(works)

    def _run(self, works: Sequence[Callable[[Session], T]]) -> list[T]:
        for attempt in range(1, _TRIES + 1):
            try:
                with side_transaction(self.session) as side:
                    return [work(side) for work in works]
            except OperationalError as exc:
                # Two workers' batches can lock the same rows in different orders; PostgreSQL
                # then aborts one of them, which is safe to run again as a whole.
                sqlstate = getattr(exc.orig, "sqlstate", None)
                if attempt == _TRIES or sqlstate not in _TRANSIENT_SQLSTATES:
                    raise
        raise AssertionError("unreachable")


class Batcher:
    """Gathers the database operations of concurrent calls and runs each kind's batch in one
    side transaction, once per event-loop tick (and again while the previous batch ran)."""

    def __init__(self, writer: SideWriter) -> None:
        self._writer = writer
        self._queue: dict[Handler, list[tuple[Any, asyncio.Future[Any]]]] = {}
        self._task: asyncio.Task[None] | None = None

    async def submit(self, handler: Handler, item: Any) -> Any:
        """Queue one item for `handler` and wait for its result."""
        return await self._enqueue(handler, item)

    def post(self, handler: Handler, item: Any) -> None:
        """Queue an item without waiting (cleanup on cancellation); `drain` finishes it."""
        self._enqueue(handler, item).add_done_callback(_swallow)

    def _enqueue(self, handler: Handler, item: Any) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.setdefault(handler, []).append((item, future))
        if self._task is None:
            self._task = loop.create_task(self._drain())
        return future

    async def drain(self) -> None:
        """Wait until everything queued has been written."""
        while self._task is not None:
            await asyncio.shield(self._task)

    async def _drain(self) -> None:
        try:
            # One turn of the loop lets the calls woken together queue their writes together.
            await asyncio.sleep(0)
            while self._queue:
                queued, self._queue = self._queue, {}
                await self._flush(queued)
        finally:
            self._task = None

    async def _flush(self, queued: dict[Handler, list[tuple[Any, asyncio.Future[Any]]]]) -> None:
        batches = list(queued.items())
        works = [_bind(handler, [item for item, _ in pairs]) for handler, pairs in batches]
        try:
            outcomes = await self._writer.run(works)
        except BaseException as exc:
            # Nobody may wait forever on a batch that failed or was cancelled.
            for _, pairs in batches:
                for _, future in pairs:
                    _fail(future, exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, pairs), outcome in zip(batches, outcomes, strict=True):
            for index, (_, future) in enumerate(pairs):
                if not future.done():
                    future.set_result(outcome[index])


def _fail(future: asyncio.Future[Any], exc: BaseException) -> None:
    if future.done():
        return
    if isinstance(exc, Exception):
        future.set_exception(exc)
    else:
        future.cancel()


def _bind(handler: Handler, items: list[Any]) -> Callable[[Session], list[Any]]:
    return lambda side: handler(side, items)


def _swallow(future: asyncio.Future[Any]) -> None:
    # Nobody waits for a posted write: mark its error as seen (it was cleanup, best effort).
    if not future.cancelled():
        future.exception()
