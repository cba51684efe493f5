"""Pages for datasets: the list with uploads, and a lead's dashboard for one pool (counts,
review progress, score distributions, job forms with live progress, duplicates, exports)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import (
    HTMLResponse,
    RedirectResponse,
    Response,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.datasets import dashboard, service
from app.datasets.downloads import export_download
from app.datasets.exporter import (
    EXPORT_FORMATS,
    ExportSource,
)
from app.datasets.importer import FORMATS
from app.models import Dataset, Example, ExampleStatus, Job, Role, User
from app.platform import forms
from app.platform.db import DB, StreamDB
from app.platform.errors import InvalidInput, NotFound, SiftError
from app.platform.web import PageLead, PageUser, check_csrf, render
from app.scoring.service import (
    create_custom_scorer,
    dataset_histograms,
    find_scorer,
    score_condition,
    start_score_job,
)
from app.selection.service import (
    DEDUP_METHODS,
    ClusterView,
    list_clusters,
    start_dedup_job,
    start_embed_job,
)

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


@dataclass
class FormError:
    """A job form that was refused: which form, why, the field at fault, what was typed."""

    form: str
    message: str
    field_name: str | None = None
    values: dict[str, str] = field(default_factory=dict)


def _examples_context(
    session: Session,
    dataset: Dataset,
    source: str,
    status: str,
    q: str,
    score: str,
    after: int | None,
    similar_to: str = "",
) -> dict[str, Any]:
    """One filtered page of the examples table, with its paging links; with `similar_to`, the
    nearest examples by meaning instead (one page, each with its cosine)."""
    notice = None
    try:
        conditions = [score_condition(session, part) for part in score.split(",") if part.strip()]
    except SiftError as exc:  # a typo in the filter box: say so, show everything
        notice, conditions = exc.message, []
    filters = service.ExampleFilter(
        source=source or None,
        status=status or None,
        q=q or None,
        conditions=conditions,
        similar_to=similar_to.strip() or None,
    )
    similarity: dict[int, float] = {}
    examples: list[Example] = []
    next_after = None
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
    else:
        examples, next_after = service.list_examples(session, dataset, filters, after, PAGE_SIZE)
    base = dataset_url(dataset.name)
    fields = (
        ("source", source),
        ("status", status),
        ("q", q),
        ("score", score),
        ("similar_to", similar_to),
    )
    query = {k: v for k, v in fields if v}
    return {
        "notice": notice,
        "score": score,
        "examples": examples,
        "similarity": similarity,
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


def _jobs_context(session: Session, dataset: Dataset) -> dict[str, Any]:
    jobs = dashboard.recent_jobs(session, dataset)
    return {"jobs": jobs, "polling": dashboard.any_active(jobs)}


def _dashboard(
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
        **_jobs_context(session, dataset),
        **examples,
    }
    return render(
        request,
        "datasets/detail.html",
        context,
        fragment="datasets/_examples.html",
        status_code=status,
    )


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
    after: int | None = None,
    similar_to: str = "",
) -> HTMLResponse:
    """A dataset's dashboard with its examples, filtered and paged by id (or the nearest by
    meaning to `similar_to`); htmx gets only the table."""
    dataset = service.get_dataset(session, name)
    examples = _examples_context(session, dataset, source, status, q, score, after, similar_to)
    return _dashboard(request, session, user, dataset, examples)


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
    context = {"dataset": dataset, "histograms": histograms}
    return render(request, "datasets/_scores.html", context)


@router.get("/datasets/{name}/jobs")
def jobs_fragment(request: Request, name: str, session: DB, user: PageUser) -> HTMLResponse:
    """The dataset's recent jobs with their progress; polls itself while one can move."""
    dataset = service.get_dataset(session, name)
    context = {"dataset": dataset, "base_url": dataset_url(dataset.name)}
    return render(request, "datasets/_jobs.html", context | _jobs_context(session, dataset))


# ---------------------------------------------------------------- job forms


def _start(
    request: Request,
    session: Session,
    user: User,
    dataset: Dataset,
    form: str,
    values: dict[str, str],
    start: Callable[[], Job],
) -> Response:
    """Start a job from a form: on success back to the dashboard, whose jobs panel shows its
    progress; a refusal is shown in the form, naming the field, with nothing written."""
    try:
        with session.begin_nested():  # a refused form leaves no half-made rows behind
            start()
    except SiftError as exc:
        return _refused(request, session, user, dataset, form, values, exc)
    return RedirectResponse(dataset_url(dataset.name) + "#jobs", status_code=303)


def _refused(
    request: Request,
    session: Session,
    user: User,
    dataset: Dataset,
    form: str,
    values: dict[str, str],
    exc: SiftError,
) -> HTMLResponse:
    field_name = exc.detail.get("field") or ("endpoint" if "endpoint" in exc.detail else None)
    failed = FormError(form, exc.message, field_name, values)
    examples = _examples_context(session, dataset, "", "", "", "", None)
    status = 422 if exc.status_code == 404 else exc.status_code
    return _dashboard(request, session, user, dataset, examples, failed=failed, status=status)


@router.post("/datasets/{name}/score", response_model=None)
def start_scoring(
    request: Request,
    name: str,
    session: DB,
    user: PageLead,
    scorer: Annotated[str, Form()] = "",
    endpoint: Annotated[str, Form()] = "",
    model: Annotated[str, Form()] = "",
    budget_usd: Annotated[str, Form()] = "",
) -> Response:
    """Score every example of the dataset that has no score from the scorer yet."""
    dataset = service.get_dataset(session, name)
    values = {"scorer": scorer, "endpoint": endpoint, "model": model, "budget_usd": budget_usd}

    def start() -> Job:
        if not scorer:
            raise InvalidInput("scorer: choose a scorer", field="scorer")
        return start_score_job(
            session,
            dataset,
            scorer,
            endpoint=endpoint or None,
            model_path=model.strip() or None,
            budget_usd=forms.number(budget_usd, "budget_usd"),
            user=user,
        )

    return _start(request, session, user, dataset, "score", values, start)


@router.post("/datasets/{name}/embed", response_model=None)
def start_embedding(
    request: Request,
    name: str,
    session: DB,
    user: PageLead,
    model: Annotated[str, Form()] = "",
) -> Response:
    """Embed every example that has no vector from the model yet (empty: the bundled one)."""
    dataset = service.get_dataset(session, name)

    def start() -> Job:
        return start_embed_job(session, dataset, model.strip() or None, user=user)

    return _start(request, session, user, dataset, "embed", {"model": model}, start)


@router.post("/datasets/{name}/dedup", response_model=None)
def start_dedup(
    request: Request,
    name: str,
    session: DB,
    user: PageLead,
    method: Annotated[str, Form()] = "",
    threshold: Annotated[str, Form()] = "",
    model: Annotated[str, Form()] = "",
    prefer: Annotated[str, Form()] = "",
) -> Response:
    """Find the dataset's near-duplicate clusters by one method."""
    dataset = service.get_dataset(session, name)
    values = {"method": method, "threshold": threshold, "model": model, "prefer": prefer}

    def start() -> Job:
        if prefer.strip():
            try:
                find_scorer(session, prefer.strip())
            except NotFound as exc:
                raise InvalidInput(f"prefer: {exc.message}", field="prefer") from None
        return start_dedup_job(
            session,
            dataset,
            method,
            threshold=forms.number(threshold, "threshold"),
            model=model.strip() or None,
            prefer=prefer.strip() or None,
            user=user,
        )

    return _start(request, session, user, dataset, "dedup", values, start)


@router.post("/datasets/{name}/recipes", response_model=None)
def create_recipe(
    request: Request,
    name: str,
    session: DB,
    user: PageLead,
    recipe_name: Annotated[str, Form()] = "",
    prompt_template: Annotated[str, Form()] = "",
    system_prompt: Annotated[str, Form()] = "",
    parse: Annotated[str, Form()] = "first_number",
    low: Annotated[str, Form()] = "",
    high: Annotated[str, Form()] = "",
    temperature: Annotated[str, Form()] = "0",
    max_tokens: Annotated[str, Form()] = "256",
    endpoint: Annotated[str, Form()] = "",
) -> Response:
    """Define an LLM rating recipe (as POST /api/v1/scorers does); it joins the score form."""
    dataset = service.get_dataset(session, name)
    values = {
        "recipe_name": recipe_name,
        "prompt_template": prompt_template,
        "system_prompt": system_prompt,
        "parse": parse,
        "low": low,
        "high": high,
        "temperature": temperature,
        "max_tokens": max_tokens,
        "endpoint": endpoint,
    }
    try:
        with session.begin_nested():
            scorer = create_custom_scorer(
                session,
                recipe_name.strip(),
                prompt_template,
                parse=parse.strip() or "first_number",
                low=forms.required_number(low, "low"),
                high=forms.required_number(high, "high"),
                system_prompt=system_prompt or None,
                temperature=forms.number(temperature, "temperature") or 0.0,
                max_tokens=forms.whole_number(max_tokens, "max_tokens") or 256,
                endpoint=endpoint or None,
            )
    except SiftError as exc:
        return _refused(request, session, user, dataset, "recipe", values, exc)
    examples = _examples_context(session, dataset, "", "", "", "", None)
    notice = f"Saved the recipe {scorer.name}@{scorer.version}: score the dataset with it below."
    return _dashboard(request, session, user, dataset, examples, notice=notice)


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
    after: int | None = None,
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
def example_page(example_id: int, session: DB, user: PageUser) -> Response:
    """One example: shown by the review page, which has everything a person needs beside it."""
    service.get_example(session, example_id)
    return RedirectResponse(f"/review/examples/{example_id}", status_code=303)
