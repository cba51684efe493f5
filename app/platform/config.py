"""Settings from the environment (prefix SIFT_), with an embedded default that needs no servers
(PostgreSQL run by Sift itself, a file-system broker)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET = "sift-dev-secret-change-me"
# Production's SIFT_SECRET_KEY signs the session cookies: at least this long, with enough
# distinct characters that it is not a word repeated (`python -c "import secrets;
# print(secrets.token_urlsafe(48))"` makes a good one).
MIN_SECRET_CHARS = 32
MIN_SECRET_DISTINCT = 12


class LLMEndpoint(BaseModel):
    """One named OpenAI-compatible endpoint (SIFT_LLM__<NAME>__...)."""

    base_url: str
    api_key: str = ""
    model: str = ""
    price_in: float | None = None  # USD per 1K prompt tokens
    price_out: float | None = None  # USD per 1K completion tokens
    rpm: int | None = None  # requests per minute, per worker process
    concurrency: int = 8  # requests in flight at once, per worker process
    timeout_s: float = 60.0  # one attempt
    max_attempts: int = 5  # the first try and its retries
    max_retry_wait_s: float = 300.0  # a longer Retry-After fails the call instead
    # Batch API jobs (`--batch`): the share of the live price a batch costs, and the window.
    batch_price_factor: float = 0.5
    batch_window: str = "24h"

    @property
    def priced(self) -> bool:
        """True when both token prices are known, so a budget can be enforced."""
        return self.price_in is not None and self.price_out is not None


class Settings(BaseSettings):
    """Everything Sift reads from the environment."""

    model_config = SettingsConfigDict(env_prefix="SIFT_", env_nested_delimiter="__", extra="ignore")

    env: Literal["development", "production"] = "development"
    data_dir: Path = Path(".sift")
    database_url: str = ""
    redis_url: str = ""
    secret_key: str = DEV_SECRET
    session_https_only: bool = False
    # The reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed: addresses or
    # networks, comma-separated (e.g. "10.0.0.5,172.18.0.0/16"). None by default, so a client
    # cannot pick the address that the sign-in limits count.
    trusted_proxies: str = ""
    # Folders that models named by people may come from, comma-separated (default: the data
    # folder's models/); Sift's training runs and its model packages are always allowed.
    model_roots: str = ""
    import_max_record_chars: int = 2_000_000
    # Files of this size and more are imported without their full-text column, which a job
    # fills after the import (app/datasets/search_index.py); 0: every file.
    import_defer_search_mb: float = 16.0
    # The largest request body (an uploaded file, mostly); larger files import from the server's
    # disk with `sift import`.
    max_request_mb: int = 200
    import_batch_size: int = 5_000
    # Connections per process; the web server's request threads are sized to match.
    db_pool_size: int = 20
    db_pool_overflow: int = 10
    # How long a request or task waits for a pooled connection, and a new connection for the
    # server, before it gives up (a request answers 503 with Retry-After).
    db_pool_timeout_s: float = 10.0
    db_connect_timeout_s: int = 5
    # A worker's heartbeat thread touches its job or chunk this often; the sweeper takes one
    # silent for job_stale_after_s as dead, and sends again a message unclaimed that long.
    job_heartbeat_s: float = 10.0
    job_stale_after_s: int = 120
    job_sweep_interval_s: float = 30.0
    job_max_attempts: int = 3
    task_time_limit_s: int = 3_000
    llm: dict[str, LLMEndpoint] = Field(default_factory=dict)
    # How often a job waiting on its Batch API batches asks the provider how far they are.
    batch_poll_s: float = 30.0
    score_chunk_size: int = 256
    # How long an example handed to one annotator stays theirs without a decision.
    review_lease_s: int = 900

    @model_validator(mode="after")
    def _refuse_default_secret_in_production(self) -> Settings:
        if self.env != "production":
            return self
        if self.secret_key in ("", DEV_SECRET):
            raise ValueError("SIFT_SECRET_KEY must be set to a real secret in production")
        if (
            len(self.secret_key) < MIN_SECRET_CHARS
            or len(set(self.secret_key)) < MIN_SECRET_DISTINCT
        ):
            raise ValueError(
                f"SIFT_SECRET_KEY is too weak for production: use at least {MIN_SECRET_CHARS} "
                f"random characters ({MIN_SECRET_DISTINCT}+ distinct), e.g. "
                "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
            )
        return self

    @property
    def embedded(self) -> bool:
        """True when no Redis is configured: jobs use the file-system broker under data_dir."""
        return not self.redis_url

    @property
    def sqlalchemy_url(self) -> str:
        """SIFT_DATABASE_URL for SQLAlchemy and psycopg 3 (empty: the embedded server, see
        `app.platform.db.database_url`)."""
        url = self.database_url
        if url.startswith(("postgresql://", "postgres://")):
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        return url

    @property
    def broker_url(self) -> str:
        """Redis in production, a broker on the local file system otherwise."""
        return self.redis_url or "filesystem://"

    @property
    def broker_dir(self) -> Path:
        """Where the embedded broker keeps its messages."""
        return (self.data_dir / "broker").resolve()

    @property
    def uploads_dir(self) -> Path:
        """Where uploaded import files wait for their job."""
        return (self.data_dir / "uploads").resolve()


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
