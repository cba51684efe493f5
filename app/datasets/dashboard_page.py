"""A dataset's dashboard page: the examples table (filtered, paged, or the nearest by meaning),
the recent jobs panel, and the job forms, one of which may come back refused."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from app.datasets import dashboard, recent_jobs, service
from app.datasets.exporter import EXPORT_FORMATS
from app.datasets.search_index import unsearchable_count
from app.datasets.urls import dataset_url
from app.models import Dataset, Example, ExampleStatus, Role, User
from app.platform.errors import SiftError
from app.platform.web import render
from app.scoring.service import ScoreSort, score_columns, score_condition, sorted_page
from app.selection.service import DEDUP_METHODS

PAGE_SIZE = 50


@dataclass
class FormError:
    """A job form that was refused: which form, why, the field at fault, what was typed."""

    form: str
    message: str
    field_name: str | None = None
    values: dict[str, str] = field(default_factory=dict)


def examples_context(
    session: Session,
    dataset: Dataset,
    source: str,
    status: str,
    q: str,
    score: str,
    after: int | None,
    similar_to: str = "",
    sort: str = "",
    cursor: str = "",
) -> dict[str, Any]:
    """One filtered page of the examples table, with its paging links and score columns; by id,
    or by a score (`sort`, keyset `cursor`); with `similar_to`, the nearest examples by meaning
    instead (one page, each with its cosine)."""
    notice = None
    try:
        conditions = [score_condition(session, part) for part in score.split(",") if part.strip()]
    except SiftError as exc:  # a typo in the filter box: say so, show everything
        notice, conditions = exc.message, []
    try:
        order = ScoreSort.parse(sort)
    except SiftError as exc:
        notice, order = exc.message, None
    filters = service.ExampleFilter(
        source=source or None,
        status=status or None,
        q=q or None,
        conditions=conditions,
        similar_to=similar_to.strip() or None,
    )
    similarity: dict[int, float] = {}
    examples: list[Example] = []
    next_after: int | None = None
    next_cursor: str | None = None
    if filters.similar_to:
        try:
            ranked = service.similar_examples(session, dataset, filters, PAGE_SIZE)
        except SiftError as exc:  # no embeddings yet: say so where the person is looking
            notice = exc.message
        else:
            examples = [e for e, _ in ranked]
            similarity = {e.id: cosine for e, cosine in ranked}
            if not ranked:
                notice = "No embedded example matches: embed the dataset, or loosen the filters."
    elif order is not None:
        try:
            base_query = service.filtered_examples(dataset, filters)
            examples, next_cursor = sorted_page(session, base_query, order, cursor, PAGE_SIZE)
        except SiftError as exc:  # an unknown scorer or a damaged cursor
            notice, order = exc.message, None
    if not filters.similar_to and order is None:
        examples, next_after = service.list_examples(session, dataset, filters, after, PAGE_SIZE)
    if filters.q and not notice and (waiting := unsearchable_count(session, dataset.id)):
        notice = (
            f"{waiting:,} examples of this dataset are still being indexed for text search "
            "(a job that follows a large import) and cannot be found by words yet."
        )
    base = dataset_url(dataset.name)
    fields = (
        ("source", source),
        ("status", status),
        ("q", q),
        ("score", score),
        ("similar_to", similar_to),
    )
    query = {k: v for k, v in fields if v}
    sorted_query = {**query, "sort": order.param} if order else query
    columns = score_columns(session, examples, also=order.scorer if order else None)
    paging = {
        "first_url": f"{base}?{urlencode(sorted_query)}" if after is not None or cursor else None,
        "next_url": (
            f"{base}?{urlencode({**sorted_query, 'cursor': next_cursor})}"
            if order and next_cursor
            else f"{base}?{urlencode({**query, 'after': next_after})}"
            if next_after is not None
            else None
        ),
    }
    return {
        **paging,
        "score_columns": columns,
        "sort_links": sort_links(base, query, columns.labels, order),
        "order": order,
        "histogram_link": f"{base}?{urlencode({k: v for k, v in query.items() if k != 'score'})}",
        "notice": notice,
        "score": score,
        "examples": examples,
        "similarity": similarity,
        "filters": filters,
        "statuses": [s.value for s in ExampleStatus],
        "base_url": base,
        "filter_query": query,
        "bulk_hidden": {k: v for k, v in sorted_query.items() if k != "similar_to"},
        "bulk_count_url": "/bulk/count?" + urlencode({"dataset": dataset.name, **query}),
    }


def sort_links(
    base: str, query: dict[str, str], labels: list[str], order: ScoreSort | None
) -> dict[str, str]:
    """Each score column's header link: highest first, or flipped when it is the order now."""
    links = {}
    for label in labels:
        then = order.flipped() if order and order.scorer == label else ScoreSort(label)
        links[label] = f"{base}?{urlencode({**query, 'sort': then.param})}"
    return links


def jobs_context(session: Session, dataset: Dataset) -> dict[str, Any]:
    jobs = recent_jobs.recent_jobs(session, dataset)
    return {"jobs": jobs, "polling": recent_jobs.any_active(jobs)}


def render_dashboard(
    request: Request,
    session: Session,
    user: User,
    dataset: Dataset,
    examples: dict[str, Any],
    *,
    failed: FormError | None = None,
    notice: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    """The whole dashboard. Counts and distributions load as fragments of their own, so the
    page answers at once on a large pool."""
    base = dataset_url(dataset.name)
    is_lead = user.has_role(Role.LEAD)
    context = {
        "user": user,
        "section": "datasets",
        "dataset": dataset,
        "base_url": base,
        "review_url": "/review/queue?" + urlencode({"dataset": dataset.name}),
        "is_lead": is_lead,
        "failed": failed,
        "form_notice": notice,
        "export_formats": EXPORT_FORMATS,
        "scorers": dashboard.scorer_names(session) if is_lead else [],
        "endpoints": dashboard.endpoint_names(),
        "dedup_methods": DEDUP_METHODS,
        **jobs_context(session, dataset),
        **examples,
    }
    return render(
        request,
        "datasets/detail.html",
        context,
        fragment="datasets/_examples.html",
        status_code=status,
    )
