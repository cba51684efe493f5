"""Pages for datasets: the list with uploads, and a lead's dashboard for one pool (counts,
review progress, score distributions, job forms with live progress, duplicates, exports)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.datasets import dashboard, job_forms, manage_page, service
from app.datasets.dashboard_page import examples_context, jobs_context, render_dashboard
from app.datasets.downloads import export_download
from app.datasets.exporter import ExportSource
from app.datasets.importer import FORMATS
from app.datasets.urls import dataset_url
from app.models import Example, Role, User
from app.platform.db import DB, StreamDB
from app.platform.errors import InvalidInput
from app.platform.validation import BigInt, Id
from app.platform.web import PageLead, PageUser, check_csrf, render
from app.scoring.service import dataset_histograms
from app.selection.service import DEDUP_METHODS, ClusterView, list_clusters

# Every state-changing request to these pages must carry the session's CSRF token.
router = APIRouter(dependencies=[Depends(check_csrf)], include_in_schema=False)
# The dashboard's job forms (score, embed, dedup, recipes) are pages of their own module.
router.include_router(job_forms.router)
router.include_router(manage_page.router)


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


@router.get("/datasets/{name}")
def dataset_page(
    request: Request,
    name: str,
    session: DB,
    user: PageUser,
    source: str = "",
    status: str = "",
    q: str = "",
    score: str = "",
    after: BigInt | None = None,
    similar_to: str = "",
    sort: str = "",
    cursor: str = "",
) -> HTMLResponse:
    """A dataset's dashboard with its examples, filtered and paged by id or sorted by a score
    (or the nearest by meaning to `similar_to`); htmx gets only the table."""
    dataset = service.get_dataset(session, name)
    examples = examples_context(
        session, dataset, source, status, q, score, after, similar_to, sort=sort, cursor=cursor
    )
    return render_dashboard(request, session, user, dataset, examples)


@router.get("/datasets/{name}/stats")
def stats_fragment(request: Request, name: str, session: DB, user: PageUser) -> HTMLResponse:
    """Size, review progress and counts per source and category (one pass over the pool)."""
    dataset = service.get_dataset(session, name)
    stats = dashboard.cached(
        session, dataset, "breakdown", lambda: dashboard.breakdown(session, dataset)
    )
    context = {"dataset": dataset, "stats": stats}
    return render(request, "datasets/_stats.html", context)


@router.get("/datasets/{name}/scores")
def scores_fragment(request: Request, name: str, session: DB, user: PageUser) -> HTMLResponse:
    """The histogram of every scorer that has scored the dataset."""
    dataset = service.get_dataset(session, name)
    histograms = dashboard.cached(
        session, dataset, "histograms", lambda: dataset_histograms(session, dataset)
    )
    context = {"dataset": dataset, "histograms": histograms, "base_url": dataset_url(dataset.name)}
    return render(request, "datasets/_scores.html", context)


@router.get("/datasets/{name}/jobs")
def jobs_fragment(request: Request, name: str, session: DB, user: PageUser) -> HTMLResponse:
    """The dataset's recent jobs with their progress; polls itself while one can move."""
    dataset = service.get_dataset(session, name)
    context = {"dataset": dataset, "base_url": dataset_url(dataset.name)}
    return render(request, "datasets/_jobs.html", context | jobs_context(session, dataset))


# ---------------------------------------------------------------- duplicates and exports

CLUSTERS_PER_PAGE = 25
MEMBERS_SHOWN = 12


@router.get("/datasets/{name}/duplicates")
def duplicates_page(
    request: Request,
    name: str,
    session: DB,
    user: PageUser,
    method: str = "",
    after: BigInt | None = None,
) -> HTMLResponse:
    """The dataset's near-duplicate clusters, each with its members and representative."""
    dataset = service.get_dataset(session, name)
    if method and method not in DEDUP_METHODS:
        raise InvalidInput(f"method: one of {', '.join(DEDUP_METHODS)}", field="method")
    clusters = list_clusters(session, dataset, method or None, CLUSTERS_PER_PAGE, after)
    shown = {i for c in clusters for i in _members_shown(c)}
    rows: list[Example] = (
        list(session.scalars(select(Example).where(Example.id.in_(shown)))) if shown else []
    )
    base = dataset_url(dataset.name)
    query = {"method": method} if method else {}
    next_after = clusters[-1].id if len(clusters) == CLUSTERS_PER_PAGE else None
    context = {
        "user": user,
        "section": "datasets",
        "dataset": dataset,
        "base_url": base,
        "method": method,
        "methods": DEDUP_METHODS,
        "clusters": [(c, _members_shown(c)) for c in clusters],
        "examples": {e.id: e for e in rows},
        "first_url": f"{base}/duplicates?{urlencode(query)}" if after is not None else None,
        "next_url": (
            f"{base}/duplicates?{urlencode({**query, 'after': next_after})}"
            if next_after is not None
            else None
        ),
    }
    return render(request, "datasets/duplicates.html", context)


def _members_shown(cluster: ClusterView) -> list[int]:
    """The representative first, then the other members, up to MEMBERS_SHOWN."""
    others = [i for i in cluster.member_ids if i != cluster.representative_id]
    return [cluster.representative_id, *others][:MEMBERS_SHOWN]


@router.get("/datasets/{name}/export", response_model=None)
def download(name: str, session: StreamDB, user: PageLead, format: str = "jsonl") -> Response:
    """Download the dataset in an export format, as a file (leads only)."""
    dataset = service.get_dataset(session, name)
    source = ExportSource("dataset", dataset.id)
    return export_download(session, source, format, f"{dataset.name}-{format}")


@router.get("/examples/{example_id}")
def example_page(example_id: Id, session: DB, user: PageUser) -> Response:
    """One example: shown by the review page, which has everything a person needs beside it."""
    service.get_example(session, example_id)
    return RedirectResponse(f"/review/examples/{example_id}", status_code=303)
