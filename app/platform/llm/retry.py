"""When to try a call again: the statuses worth another attempt, how long a server asked us
to wait (Retry-After), and exponential backoff with full jitter otherwise."""

from __future__ import annotations

import email.utils
import random
from collections.abc import Mapping
from datetime import UTC, datetime

BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 30.0
# Statuses worth another attempt besides 5xx: timeout, conflict, rate limit.
RETRY_STATUSES = frozenset({408, 409, 429})


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """How long a server asked us to wait (retry-after-ms, or Retry-After in seconds or as an
    HTTP date); the longer one when both are given; None when it did not say."""
    waits: list[float | None] = []
    millis = _number(headers.get("retry-after-ms"))
    if millis is not None:
        waits.append(millis / 1000)
    value = headers.get("retry-after")
    if value:
        seconds = _number(value)
        waits.append(seconds if seconds is not None else _until(value))
    found = [max(0.0, wait) for wait in waits if wait is not None]
    return max(found) if found else None


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _until(http_date: str) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(http_date)
    except (TypeError, ValueError):
        return None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return (when - datetime.now(UTC)).total_seconds()


def backoff_s(attempt: int, base_s: float = BACKOFF_BASE_S, cap_s: float = BACKOFF_CAP_S) -> float:
    """Exponential backoff with full jitter before attempt `attempt + 1`."""
    return random.uniform(0.0, min(cap_s, base_s * 2 ** (attempt - 1)))
