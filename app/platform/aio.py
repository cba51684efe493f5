"""Running async code (the LLM client's concurrent calls) from a synchronous job."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to its end on a fresh event loop: uvloop's where installed (it comes
    with uvicorn[standard] on Linux and spends less CPU per HTTP call), asyncio's otherwise."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)
