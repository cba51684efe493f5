"""The dataset page's bulk form: one action on the ticked examples, or on every example that
matches the table's filter."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Form
from fastapi.responses import RedirectResponse

from app.datasets.service import get_dataset
from app.platform.db import DB
from app.platform.web import PageLead, check_csrf
from app.review.bulk import BulkAction, start_bulk

router = APIRouter(dependencies=[Depends(check_csrf)], include_in_schema=False)


@router.post("/datasets/{name}/bulk")
def bulk(
    name: str,
    session: DB,
    user: PageLead,
    action: Annotated[str, Form()],
    ids: Annotated[list[int], Form()] = [],  # noqa: B006 (FastAPI reads the default, never changes it)
    reason: Annotated[str, Form()] = "",
    collection: Annotated[str, Form()] = "",
    value: Annotated[str, Form()] = "",
    source: Annotated[str, Form()] = "",
    status: Annotated[str, Form()] = "",
    q: Annotated[str, Form()] = "",
    score: Annotated[str, Form()] = "",
) -> RedirectResponse:
    """One action on the ticked examples, or on every example matching the table's filter;
    back to the table (a large one runs as a job, shown in the dataset's jobs)."""
    dataset = get_dataset(session, name)
    action_ = BulkAction(
        action=action,
        reason=reason,
        collection=collection.strip() or None,
        value=value,
        source=source or None,
        status=status or None,
        q=q or None,
        score=[part.strip() for part in score.split(",") if part.strip()],
        ids=ids or None,
    )
    start_bulk(session, user, dataset, action_)
    filters = {k: v for k, v in (("source", source), ("status", status), ("q", q),
                                 ("score", score)) if v}  # fmt: skip
    target = f"/datasets/{quote(name, safe='')}"
    return RedirectResponse(f"{target}?{urlencode(filters)}#examples", status_code=303)
