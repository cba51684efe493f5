"""Typed errors raised by services; each carries the HTTP status a route answers with."""

from __future__ import annotations

from typing import Any


class SiftError(Exception):
    """Base of every error a user can cause; never shown as a traceback."""

    status_code = 400

    def __init__(self, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class NotFound(SiftError):
    status_code = 404


class Conflict(SiftError):
    status_code = 409


class InvalidInput(SiftError):
    status_code = 422


class Forbidden(SiftError):
    status_code = 403


class Unauthorized(SiftError):
    status_code = 401


class PreconditionRequired(SiftError):
    status_code = 428


class Unavailable(SiftError):
    """A moment's trouble (the database down or busy): the same request works later."""

    status_code = 503

    def __init__(self, message: str, retry_after: int = 1, **detail: Any) -> None:
        super().__init__(message, retry_after=retry_after, **detail)
        self.retry_after = retry_after
