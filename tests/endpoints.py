"""Named LLM endpoints for tests, set the way a deployment sets them: SIFT_LLM__<NAME>__<KEY>."""

from __future__ import annotations

import pytest

from app.platform.config import get_settings


def configure_endpoint(monkeypatch: pytest.MonkeyPatch, name: str, **values: object) -> None:
    """Set SIFT_LLM__<NAME>__<KEY> for each value and forget the cached settings."""
    for key, value in values.items():
        monkeypatch.setenv(f"SIFT_LLM__{name.upper()}__{key.upper()}", str(value))
    get_settings.cache_clear()
