"""Settings: no default secret in production, nested LLM endpoints, database URLs."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from app.platform.config import DEV_SECRET, Settings


@pytest.mark.parametrize("secret", ["", DEV_SECRET])
def test_production_refuses_a_default_or_empty_secret(
    secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIFT_ENV", "production")
    monkeypatch.setenv("SIFT_SECRET_KEY", secret)
    with pytest.raises(ValidationError, match="SIFT_SECRET_KEY"):
        Settings()


def test_production_starts_with_a_real_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIFT_ENV", "production")
    monkeypatch.setenv("SIFT_SECRET_KEY", "a-long-random-secret-from-the-operator")
    assert Settings().env == "production"


def test_named_llm_endpoints_come_from_nested_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIFT_LLM__DEFAULT__BASE_URL", "http://127.0.0.1:9000/v1")
    monkeypatch.setenv("SIFT_LLM__DEFAULT__MODEL", "gpt-4o-mini")
    monkeypatch.setenv("SIFT_LLM__DEFAULT__PRICE_IN", "0.00015")
    monkeypatch.setenv("SIFT_LLM__DEFAULT__CONCURRENCY", "16")
    endpoint = Settings().llm["default"]
    assert endpoint.base_url == "http://127.0.0.1:9000/v1"
    assert endpoint.model == "gpt-4o-mini"
    assert endpoint.price_in == pytest.approx(0.00015)
    assert endpoint.concurrency == 16


def test_database_and_broker_urls(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SIFT_DATA_DIR", str(tmp_path))
    embedded = Settings()
    assert embedded.embedded and embedded.broker_url == "filesystem://"
    assert (
        embedded.sqlalchemy_url == ""
    )  # the embedded PostgreSQL server (app.platform.embedded_db)
    monkeypatch.setenv("SIFT_DATABASE_URL", "postgresql://sift@db:5432/sift")
    monkeypatch.setenv("SIFT_REDIS_URL", "redis://redis:6379/0")
    served = Settings()
    assert not served.embedded and served.broker_url == "redis://redis:6379/0"
    assert served.sqlalchemy_url == "postgresql+psycopg://sift@db:5432/sift"


@pytest.mark.parametrize(
    "secret",
    [
        "a",  # issue 18, finding 8
        "short-but-random-Xy7",  # under 32 characters
        "ab" * 32,  # long, but two characters repeated
        "password" * 5,  # long, but a word repeated
    ],
)
def test_production_refuses_a_weak_secret(secret: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIFT_ENV", "production")
    monkeypatch.setenv("SIFT_SECRET_KEY", secret)
    with pytest.raises(ValidationError, match="SIFT_SECRET_KEY is too weak") as raised:
        Settings()
    assert "\n" not in raised.value.errors()[0]["msg"]  # `sift` prints it on one line


def test_development_accepts_any_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIFT_ENV", "development")
    monkeypatch.setenv("SIFT_SECRET_KEY", "a")
    assert Settings().secret_key == "a"
