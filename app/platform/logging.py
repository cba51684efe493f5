"""Structured logs (structlog): key=value on a terminal, JSON in production."""

from __future__ import annotations

import logging

import structlog

from app.platform.config import get_settings


def configure_logging() -> None:
    """Set up structlog once for the process."""
    production = get_settings().env == "production"
    renderer = (
        structlog.processors.JSONRenderer() if production else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        cache_logger_on_first_use=True,
    )
