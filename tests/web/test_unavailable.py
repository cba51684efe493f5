"""A database outage, a lock timeout or a full pool answers 503 with Retry-After: JSON for the
API, a page for the browser, a message fragment for htmx; never a 500 or a dropped connection."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import anyio
import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy import exc as sa
from sqlalchemy.orm import Session

from app.entrypoints.web import database_trouble
from app.platform.config import get_settings
from app.platform.db import get_session, make_engine
from tests.factories import make_token, make_user
from tests.web.live import free_port
from tests.web.test_pages import sign_in

HTMX = {"hx-request": "true"}


@pytest.fixture
def dead_engine() -> Iterator[Engine]:
    """An engine on a port where no PostgreSQL listens: the database is down."""
    engine = make_engine(f"postgresql+psycopg://sift@127.0.0.1:{free_port()}/sift")
    yield engine
    engine.dispose()


def database_down(client: TestClient, engine: Engine) -> None:
    """From now on, every request's session is on the dead engine."""

    def dead_session() -> Iterator[Session]:
        with Session(engine) as session:
            yield session

    client.app.dependency_overrides[get_session] = dead_session  # type: ignore[attr-defined]


def wrapped(error: Exception) -> Exception:
    """A driver error as SQLAlchemy raises it."""
    return sa.DBAPIError.instance("SELECT 1", {}, error, psycopg.Error)


def test_lock_timeouts_deadlocks_and_outages_are_trouble_and_bugs_are_not() -> None:
    busy = database_trouble(wrapped(psycopg.errors.LockNotAvailable("lock timeout")))
    assert busy is not None and busy.retry_after == 1 and "busy" in busy.message
    assert database_trouble(wrapped(psycopg.errors.DeadlockDetected("deadlock"))) is not None
    assert database_trouble(sa.TimeoutError("QueuePool limit reached")) is not None
    down = database_trouble(wrapped(psycopg.OperationalError("connection refused")))
    assert down is not None and down.retry_after == 5 and "not answering" in down.message
    assert database_trouble(wrapped(psycopg.errors.AdminShutdown("terminating"))) is not None
    assert database_trouble(wrapped(psycopg.errors.UniqueViolation("dup"))) is None
    assert database_trouble(wrapped(psycopg.errors.UndefinedColumn("typo"))) is None
    assert database_trouble(ValueError("not the database")) is None


def test_the_api_answers_503_json_when_the_database_is_down(
    client: TestClient, session: Session, dead_engine: Engine
) -> None:
    _, headers = make_token(session)
    database_down(client, dead_engine)
    response = client.get("/api/v1/datasets", headers=headers)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["error"] == "the database is not answering: try again in a moment"
    assert response.json()["retry_after"] == 5


def test_a_lock_timeout_answers_503_json(
    client: TestClient, session: Session, engine: Engine
) -> None:
    _, headers = make_token(session)
    session.execute(text("SET LOCAL lock_timeout = '100ms'"))  # rolled back with the test
    with engine.connect() as other, other.begin():
        other.execute(text("LOCK TABLE examples IN ACCESS EXCLUSIVE MODE"))
        response = client.get("/api/v1/examples/1", headers=headers)
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "1"
    assert response.json()["error"] == "the database is busy: try again in a moment"


def test_pages_answer_503_as_a_page_and_htmx_gets_a_message(
    client: TestClient, session: Session, dead_engine: Engine
) -> None:
    sign_in(client, make_user(session, "lead"))
    database_down(client, dead_engine)

    page = client.get("/jobs")
    assert page.status_code == 503
    assert page.headers["retry-after"] == "5"
    assert "<html" in page.text and "the database is not answering" in page.text

    fragment = client.get("/jobs", headers=HTMX)
    assert fragment.status_code == 503
    assert fragment.headers["retry-after"] == "5"
    assert fragment.headers["hx-reswap"] == "none"
    assert "<html" not in fragment.text
    assert "data-error-message" in fragment.text
    assert "the database is not answering: try again in a moment" in fragment.text


def test_htmx_errors_are_message_fragments(client: TestClient, session: Session) -> None:
    csrf = sign_in(client, make_user(session, "lead"))
    response = client.post(
        "/jobs/987654321/cancel", headers={**HTMX, "x-csrf-token": csrf}, follow_redirects=False
    )
    assert response.status_code == 404
    assert "<html" not in response.text
    assert 'data-status="404"' in response.text and "data-error-message" in response.text


def test_requests_past_the_pool_wait_and_then_answer_503(
    client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, headers = make_token(session)
    monkeypatch.setattr(get_settings(), "db_pool_timeout_s", 0.1)
    client.app.state.database_gate = anyio.Semaphore(0)  # type: ignore[attr-defined]
    response = client.get("/api/v1/datasets", headers=headers)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json()["error"] == "Sift is busy: try again in a moment"
    assert client.get("/healthz").status_code == 200  # alive, if busy
    assert client.get("/static/errors.js").status_code == 200  # files need no database


def test_the_thread_pool_and_the_gate_are_the_size_of_the_database_pool(
    client: TestClient,
) -> None:
    settings = get_settings()
    connections = settings.db_pool_size + settings.db_pool_overflow

    def threads() -> float:
        return anyio.to_thread.current_default_thread_limiter().total_tokens

    assert client.portal is not None
    assert client.portal.call(threads) == connections
    gate = client.app.state.database_gate  # type: ignore[attr-defined]
    assert client.portal.call(lambda: gate.value) == connections


def test_what_the_app_loaded_at_start_is_out_of_the_collectors_reach(client: TestClient) -> None:
    """A full collection walks only what requests made, not the app and its libraries."""
    assert client.portal is not None  # the lifespan has run
    assert gc.get_freeze_count() > 10_000
