"""An API token's last use: written at most once a minute per token, outside the request's
transaction, and never waiting on a lock (fifty clients sharing one token once queued on it)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, select, text, update
from sqlalchemy.orm import Session

from app.models import ApiToken, User
from app.platform import security
from app.platform.security import TouchThrottle, touch_token
from app.users.service import create_token
from tests.factories import make_token, make_user


@pytest.fixture
def committed_token(engine: Engine) -> Iterator[int]:
    """The id of a committed token (a separate connection must see it); removed afterwards."""
    with Session(engine) as session, session.begin():
        user = make_user(session, "lead")
        create_token(session, user)
        user_id = user.id
        token_id = session.scalar(select(ApiToken.id).where(ApiToken.user_id == user_id))
    assert token_id is not None
    yield token_id
    with Session(engine) as session, session.begin():
        session.execute(delete(ApiToken).where(ApiToken.user_id == user_id))
        session.execute(delete(User).where(User.id == user_id))


def last_used(engine: Engine, token_id: int) -> datetime | None:
    with Session(engine) as session:
        return session.scalar(select(ApiToken.last_used_at).where(ApiToken.id == token_id))


def test_the_throttle_lets_each_token_through_once_an_interval() -> None:
    throttle = TouchThrottle(interval_s=60)
    assert throttle.due("a", now=100.0)
    assert not throttle.due("a", now=100.5)
    assert throttle.due("b", now=100.5)  # another token has its own minute
    assert not throttle.due("a", now=159.9)
    assert throttle.due("a", now=160.0)


def test_a_touch_writes_once_a_minute(engine: Engine, committed_token: int) -> None:
    touch_token(engine, committed_token)
    first = last_used(engine, committed_token)
    assert first is not None
    touch_token(engine, committed_token)  # within the minute (another process, say): no write
    assert last_used(engine, committed_token) == first
    with Session(engine) as session, session.begin():
        earlier = first - timedelta(minutes=2)
        session.execute(
            update(ApiToken).where(ApiToken.id == committed_token).values(last_used_at=earlier)
        )
    touch_token(engine, committed_token)
    latest = last_used(engine, committed_token)
    assert latest is not None and latest > first - timedelta(minutes=1)


def test_a_touch_never_waits_on_a_locked_token(engine: Engine, committed_token: int) -> None:
    with engine.connect() as holder, holder.begin():
        holder.execute(text(f"SELECT 1 FROM api_tokens WHERE id = {committed_token} FOR UPDATE"))
        started = time.monotonic()
        touch_token(engine, committed_token)  # gives up at once, raising nothing
        assert time.monotonic() - started < 1.0
    assert last_used(engine, committed_token) is None


class Recorder:
    """Stands in for the touch thread: what would have been written."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def submit(self, *args: Any) -> None:
        self.calls.append(args)


def test_api_requests_leave_the_token_row_alone_and_touch_once(
    client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = Recorder()
    monkeypatch.setattr(security, "_toucher", recorder)
    monkeypatch.setattr(security, "_touches", TouchThrottle())
    user, headers = make_token(session)
    for _ in range(5):
        assert client.get("/api/v1/datasets", headers=headers).status_code == 200
    assert len(recorder.calls) == 1
    _, _, token_id = recorder.calls[0]
    row = session.get(ApiToken, token_id)
    assert row is not None and row.user_id == user.id
    session.refresh(row)
    assert row.last_used_at is None  # nothing written in the request's own transaction
