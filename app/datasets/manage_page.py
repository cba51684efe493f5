"""The page that renames or deletes a dataset, showing first what depends on it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from app.datasets import removal, service
from app.datasets.urls import dataset_url
from app.models import Dataset, User
from app.platform.db import DB
from app.platform.errors import InvalidInput, SiftError
from app.platform.web import PageLead, check_csrf, render

router = APIRouter(dependencies=[Depends(check_csrf)], include_in_schema=False)


def _page(
    request: Request,
    session: Session,
    user: User,
    dataset: Dataset,
    error: SiftError | None = None,
) -> HTMLResponse:
    context = {
        "user": user,
        "section": "datasets",
        "dataset": dataset,
        "base_url": dataset_url(dataset.name),
        "found": removal.dependents(session, dataset),
        "error": error.message if error else None,
    }
    status = error.status_code if error else 200
    return render(request, "datasets/manage.html", context, status_code=status)


@router.get("/datasets/{name}/manage")
def manage_page(request: Request, name: str, session: DB, user: PageLead) -> HTMLResponse:
    """Rename and delete, with what a deletion would touch and what stops it."""
    return _page(request, session, user, service.get_dataset(session, name))


@router.post("/datasets/{name}/rename", response_model=None)
def rename(
    request: Request,
    name: str,
    session: DB,
    user: PageLead,
    new_name: Annotated[str, Form()] = "",
) -> Response:
    """Rename, then show the dataset under its new name."""
    dataset = service.get_dataset(session, name)
    try:
        with session.begin_nested():
            removal.rename_dataset(session, dataset, new_name)
    except SiftError as exc:
        return _page(request, session, user, service.get_dataset(session, name), exc)
    return RedirectResponse(dataset_url(dataset.name), status_code=303)


@router.post("/datasets/{name}/delete", response_model=None)
def delete(
    request: Request,
    name: str,
    session: DB,
    user: PageLead,
    confirm: Annotated[str, Form()] = "",
) -> Response:
    """Delete once the name is typed to confirm; a large dataset goes as a job."""
    dataset = service.get_dataset(session, name)
    try:
        if confirm.strip() != dataset.name:
            raise InvalidInput("type the dataset's name to delete it", field="confirm")
        with session.begin_nested():
            job = removal.delete_dataset(session, dataset, user)
    except SiftError as exc:
        return _page(request, session, user, dataset, exc)
    return RedirectResponse("/jobs" if job else "/datasets", status_code=303)
