"""Where the test suite finds PostgreSQL and Redis, and what to do when they are missing."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

import pytest

POSTGRES_URL = os.environ.get(
    "SIFT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("SIFT_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
REQUIRED = os.environ.get("SIFT_TEST_REQUIRE_SERVICES") == "1"


def reachable(url: str, default_port: int) -> bool:
    """True when something accepts TCP connections at the URL's host and port."""
    parsed = urlparse(url.replace("+psycopg", ""))
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or default_port), 2
        ):
            return True
    except OSError:
        return False


def need(name: str, url: str, default_port: int) -> None:
    """Skip (or, with SIFT_TEST_REQUIRE_SERVICES=1, fail) when a service is not reachable."""
    if reachable(url, default_port):
        return
    message = f"{name} is not reachable at {url}"
    if REQUIRED:
        pytest.fail(f"{message} and SIFT_TEST_REQUIRE_SERVICES=1")
    pytest.skip(message)
