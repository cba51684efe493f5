"""Reading the review forms' fields that a fixed signature cannot name."""

from __future__ import annotations

from fastapi import Request


async def edited_turns(request: Request) -> dict[int, str]:
    """The form's `turn_N` fields by turn index (a form names as many as the example has)."""
    form = await request.form()
    return {
        int(key.removeprefix("turn_")): str(value).replace("\r\n", "\n")
        for key, value in form.items()
        if key.startswith("turn_") and key.removeprefix("turn_").isdigit()
    }
