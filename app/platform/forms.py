"""Reading an HTML form's text fields: numbers, optional text and `GROUP=N` quota lines.

A field that cannot be read raises `InvalidInput` naming it (`field=`), so that a page can
show the form again with the reason beside it. A blank field is "not given": None, or the
`default` asked for."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar, overload

from app.platform.errors import InvalidInput

T = TypeVar("T", int, float)


def _read(
    raw: str, field: str, convert: Callable[[str], T], kind: str, default: T | None
) -> T | None:
    """`convert` of the field's text; blank is `default`; anything else refused as not a `kind`."""
    value = raw.strip()
    if not value:
        return default
    try:
        return convert(value)
    except ValueError:
        raise InvalidInput(f"{field}: {value!r} is not a {kind}", field=field) from None


def optional(raw: str) -> str | None:
    """The field without surrounding blanks, or None when nothing is left."""
    return raw.strip() or None


@overload
def number(raw: str, field: str) -> float | None: ...
@overload
def number(raw: str, field: str, *, default: float) -> float: ...
def number(raw: str, field: str, *, default: float | None = None) -> float | None:
    """A decimal number ("0.5", "3", "1e-3"); blank is `default`."""
    return _read(raw, field, float, "number", default)


@overload
def integer(raw: str, field: str) -> int | None: ...
@overload
def integer(raw: str, field: str, *, default: int) -> int: ...
def integer(raw: str, field: str, *, default: int | None = None) -> int | None:
    """An integer, refused as "not a number" (a count such as n, budget or seed, where the
    field's name already says it is whole); blank is `default`."""
    return _read(raw, field, int, "number", default)


@overload
def whole_number(raw: str, field: str) -> int | None: ...
@overload
def whole_number(raw: str, field: str, *, default: int) -> int: ...
def whole_number(raw: str, field: str, *, default: int | None = None) -> int | None:
    """An integer, refused as "not a whole number" (where a decimal would be a natural
    mistake, such as max_tokens beside a temperature); blank is `default`."""
    return _read(raw, field, int, "whole number", default)


def required_number(raw: str, field: str) -> float:
    """A decimal number that must be given."""
    value = number(raw, field)
    if value is None:
        raise InvalidInput(f"{field}: required", field=field)
    return value


def quotas(text: str, field: str) -> dict[str, int]:
    """`GROUP=N` lines (blank lines skipped) as a quota mapping; a bad line is named by its
    number. The group is what comes before the last "=", so a group may itself hold "="."""
    found: dict[str, int] = {}
    for line_number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        group, sep, count = line.rpartition("=")
        if not sep or not group.strip() or not count.strip().isdigit():
            raise InvalidInput(
                f"{field} quotas, line {line_number}: {line.strip()!r} is not GROUP=NUMBER",
                field=field,
            )
        found[group.strip()] = int(count)
    return found
