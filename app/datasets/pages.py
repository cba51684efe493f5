"""Pages for datasets and their examples: browse, filter, page through, upload."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from app.core.db import DB
from app.core.errors import InvalidInput, SiftError
from app.core.web import PageLead, PageUser, check_csrf, is_htmx, render
from app.datasets import service
from app.datasets.importer import FORMATS
from app.models import ExampleStatus, Role, User
from app.scoring.service import score_condition, score_histograms

# Every state-changing request to these pages must carry the session's CSRF token.
router = APIRouter(dependencies=[Depends(check_csrf)], include_in_schema=False)
PAGE_SIZE = 50


def dataset_url(name: str) -> str:
    """The page of a dataset (names may hold any printable character)."""
    return "/datasets/" + quote(name, safe="/")


def _list_page(
    request: Request, session: Session, user: User, error: str | None = None, status: int = 200
) -> HTMLResponse:
    context = {
        "user": user,
        "section": "datasets",
        "datasets": [(d, n, dataset_url(d.name)) for d, n in service.list_datasets(session)],
        "formats": FORMATS,
        "can_import": user.has_role(Role.LEAD),
        "error": error,
    }
    return render(request, "datasets/list.html", context, status_code=status)


@router.get("/datasets")
def list_datasets(request: Request, session: DB, user: PageUser) -> HTMLResponse:
    """Every dataset with its size; leads also get the upload form."""
    return _list_page(request, session, user)


@router.post("/datasets/import", response_model=None)
def import_file(
    request: Request,
    session: DB,
    user: PageLead,
    file: Annotated[UploadFile, File()],
    dataset: Annotated[str, Form()] = "",
    format: Annotated[str, Form()] = "auto",
    skip_invalid: Annotated[bool, Form()] = False,
    source: Annotated[str, Form()] = "",
) -> Response:
    """Save an upload and import it as a background job; the dataset is created if new."""
    try:
        if format not in FORMATS:
            raise InvalidInput(f"unknown format {format!r}")
        if not file.filename:
            raise InvalidInput("choose a file to import")
        target = service.get_or_create_dataset(session, dataset, user)
    except InvalidInput as exc:
        return _list_page(request, session, user, exc.message, status=422)
    path = service.save_upload(file.file, file.filename)
    service.start_import_job(
        session,
        target,
        path,
        fmt=format,
        skip_invalid=skip_invalid,
        source=source.strip() or None,
        user=user,
    )
    return RedirectResponse("/jobs", status_code=303)


@router.get("/datasets/{name:path}")
def dataset_page(
    request: Request,
    name: str,
    session: DB,
    user: PageUser,
    source: str = "",
    status: str = "",
    q: str = "",
    score: str = "",
    after: int | None = None,
) -> HTMLResponse:
    """A dataset's examples, filtered and paged by id, and its score distributions; htmx gets
    only the table."""
    dataset = service.get_dataset(session, name)
    notice = None
    try:
        conditions = [score_condition(session, part) for part in score.split(",") if part.strip()]
    except SiftError as exc:  # a typo in the filter box: say so, show everything
        notice, conditions = exc.message, []
    filters = service.ExampleFilter(
        source=source or None, status=status or None, q=q or None, conditions=conditions
    )
    examples, next_after = service.list_examples(session, dataset, filters, after, PAGE_SIZE)
    base = dataset_url(dataset.name)
    fields = (("source", source), ("status", status), ("q", q), ("score", score))
    query = {k: v for k, v in fields if v}
    full_page = not is_htmx(request)
    context = {
        "notice": notice,
        "score": score,
        # Distributions are drawn on the full page only; the table refreshes without them.
        "histograms": score_histograms(session, dataset) if full_page else [],
        "user": user,
        "section": "datasets",
        "dataset": dataset,
        # The table alone (htmx) does not show the total: skip counting a large pool.
        "total": None if is_htmx(request) else service.count_examples(session, dataset),
        "examples": examples,
        "filters": filters,
        "statuses": [s.value for s in ExampleStatus],
        "base_url": base,
        "first_url": f"{base}?{urlencode(query)}" if after is not None else None,
        "next_url": (
            f"{base}?{urlencode({**query, 'after': next_after})}"
            if next_after is not None
            else None
        ),
    }
    return render(request, "datasets/detail.html", context, fragment="datasets/_examples.html")


@router.get("/examples/{example_id}")
def example_page(request: Request, example_id: int, session: DB, user: PageUser) -> HTMLResponse:
    """One example: its turns as plain text, and where it came from."""
    example = service.get_example(session, example_id)
    context = {
        "user": user,
        "section": "datasets",
        "example": example,
        "dataset_url": dataset_url(example.dataset.name),
    }
    return render(request, "datasets/example.html", context)
