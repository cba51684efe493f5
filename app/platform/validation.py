"""Request input checked before it reaches the database: ids in PostgreSQL's bigint range, no NUL
characters in text, idempotency keys that say something.

PostgreSQL refuses a NUL in text and JSONB and a number past bigint; caught there, the
request's transaction is spoiled and the caller learns nothing. Caught here, the answer is a
422 that names the field.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Any

from annotated_types import Interval
from fastapi import Header, Request
from starlette.datastructures import UploadFile

from app.platform.errors import InvalidInput

BIGINT_MIN = -(2**63)
BIGINT_MAX = 2**63 - 1

# A row id in a path, a query or a body: past bigint it names no row (422, not a 500).
Id = Annotated[int, Interval(ge=1, le=BIGINT_MAX)]
# Any other integer compared with a bigint column (a paging cursor, a count).
BigInt = Annotated[int, Interval(ge=BIGINT_MIN, le=BIGINT_MAX)]
# The Idempotency-Key header: absent, or 1-200 characters (an empty key is refused, never
# stored as '' for the next empty key to collide with).
IdempotencyKey = Annotated[str | None, Header(min_length=1, max_length=200)]

NUL = "\x00"
_ESCAPED_NUL = b"\\u0000"


def nul_message(field: str) -> str:
    """The one message for a NUL character in `field`."""
    return f"{field}: text must not contain NUL characters (\\u0000)"


def first_nul(value: Any, field: str = "") -> str | None:
    """Where in `value` (text, or JSON-like lists and dicts, keys too) the first NUL character
    sits, as a dotted path from `field`; None when there is none."""
    return next(_nul_places(value, field), None)


def refuse_nul(value: Any, field: str) -> None:
    """Raise InvalidInput naming the first place in `value` (text, or JSON-like lists and dicts,
    keys too) that holds a NUL character; `field` names `value` itself."""
    for where in _nul_places(value, field):
        raise InvalidInput(nul_message(where), problems=[{"field": where, "message": "NUL"}])


def _nul_places(value: Any, field: str) -> Iterator[str]:
    if isinstance(value, str):
        if NUL in value:
            yield field
    elif isinstance(value, dict):
        for key, item in value.items():
            inner = f"{field}.{key}" if field else str(key)
            if isinstance(key, str) and NUL in key:
                yield inner
            yield from _nul_places(item, inner)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _nul_places(item, f"{field}.{index}" if field else str(index))


async def refuse_nul_input(request: Request) -> None:
    """Refuse a request whose path, query, form fields or JSON body hold a NUL character (422
    naming the field), before any route or service sees it. Uploaded files are the importers'
    to check, record by record."""
    for name, value in request.path_params.items():
        refuse_nul(value, str(name))
    for name, value in request.query_params.multi_items():
        refuse_nul(name, name)
        refuse_nul(value, name)
    for name, value in request.headers.items():
        if NUL in value:
            raise InvalidInput(nul_message(f"header {name}"))
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        for name, value in (await request.form()).multi_items():
            if not isinstance(value, UploadFile):
                refuse_nul(name, name)
                refuse_nul(value, name)
    elif "json" in content_type:
        body = await request.body()
        # A raw NUL is no valid JSON anyway (the route's own parsing says so); only the escape
        # is worth a parse, and only when it is there at all.
        if _ESCAPED_NUL in body:
            try:
                parsed = json.loads(body)
            except ValueError:
                return  # the route answers its own 422 for a body that is no JSON
            refuse_nul(parsed, "")
