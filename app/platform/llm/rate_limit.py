"""The process-wide rate limiter of an endpoint with a requests-per-minute limit."""

from __future__ import annotations

import asyncio
import threading
import time

from app.platform.config import LLMEndpoint


class RateLimiter:
    """Spaces sends evenly under a requests-per-minute limit; safe across threads and loops."""

    def __init__(self, rpm: int) -> None:
        self.interval_s = 60.0 / rpm
        self._next = 0.0
        self._lock = threading.Lock()

    async def wait(self) -> None:
        """Wait for this process's next free send slot."""
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval_s
        if slot > now:
            await asyncio.sleep(slot - now)


_LIMITERS: dict[tuple[str, int], RateLimiter] = {}
_LIMITERS_LOCK = threading.Lock()


def rate_limiter(name: str, endpoint: LLMEndpoint) -> RateLimiter | None:
    """The process-wide limiter of an endpoint with an rpm limit."""
    if not endpoint.rpm:
        return None
    with _LIMITERS_LOCK:
        return _LIMITERS.setdefault((name.lower(), endpoint.rpm), RateLimiter(endpoint.rpm))
