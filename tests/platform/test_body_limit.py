"""Request bodies past SIFT_MAX_REQUEST_MB answer 413 before they reach the disk (finding 5 of
the hardening issue: a 300 MB upload was accepted and kept)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.platform.config import get_settings
from app.platform.db import get_session
from tests.factories import make_token, unique


@pytest.fixture
def small_limit_client(session: Session, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The app with a 1 MB request limit, sharing the test's session."""
    from app.entrypoints.web import create_app

    monkeypatch.setenv("SIFT_MAX_REQUEST_MB", "1")
    get_settings.cache_clear()
    app = create_app()
    app.dependency_overrides[get_session] = lambda: (yield session)
    with TestClient(app) as client:
        yield client
    monkeypatch.undo()
    get_settings.cache_clear()


def _uploads() -> list[Path]:
    folder = get_settings().uploads_dir
    return sorted(folder.iterdir()) if folder.is_dir() else []


def test_a_declared_body_over_the_limit_is_refused_at_once(
    small_limit_client: TestClient, session: Session
) -> None:
    _, lead = make_token(session, "lead")
    before = _uploads()
    response = small_limit_client.post(
        f"/api/v1/datasets/{unique('big')}/imports",
        files={"file": ("big.jsonl", b"x" * (2 << 20), "application/json")},
        headers=lead,
    )
    assert response.status_code == 413
    assert "SIFT_MAX_REQUEST_MB" in response.json()["error"]
    assert _uploads() == before


def test_a_chunked_body_is_cut_off_where_it_passes_the_limit(
    small_limit_client: TestClient, session: Session
) -> None:
    _, lead = make_token(session, "lead")
    sent = 0

    def chunks() -> Iterator[bytes]:  # no Content-Length: the size is known only as it arrives
        nonlocal sent
        for _ in range(64):
            sent += 1
            yield b"y" * (64 << 10)

    response = small_limit_client.post(
        "/api/v1/datasets", content=chunks(), headers={**lead, "content-type": "application/json"}
    )
    assert response.status_code == 413


def test_a_page_gets_the_message_where_htmx_shows_it(small_limit_client: TestClient) -> None:
    response = small_limit_client.post("/login", content=b"name=" + b"a" * (2 << 20))
    assert response.status_code == 413
    assert "data-error-message" in response.text and "larger than the limit" in response.text


def test_a_body_under_the_limit_goes_through(
    small_limit_client: TestClient, session: Session
) -> None:
    _, lead = make_token(session, "lead")
    response = small_limit_client.post(
        "/api/v1/datasets", json={"name": unique("small")}, headers=lead
    )
    assert response.status_code == 201
