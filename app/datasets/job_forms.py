"""The job forms of a dataset's dashboard: score, embed, find duplicates, and define a rating
recipe. A started job shows in the dashboard's jobs panel; a refused form comes back in the
dashboard, naming the field at fault, with nothing written."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from app.datasets import service
from app.datasets.dashboard_page import FormError, examples_context, render_dashboard
from app.datasets.urls import dataset_url
from app.models import Dataset, Job, User
from app.platform import forms
from app.platform.db import DB
from app.platform.errors import InvalidInput, NotFound, SiftError
from app.platform.web import PageLead, check_csrf
from app.scoring.service import create_custom_scorer, find_scorer, start_score_job
from app.selection.service import start_dedup_job, start_embed_job

# Every state-changing request to these pages must carry the session's CSRF token.
router = APIRouter(dependencies=[Depends(check_csrf)], include_in_schema=False)


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
    examples = examples_context(session, dataset, "", "", "", "", None)
    status = 422 if exc.status_code == 404 else exc.status_code
    return render_dashboard(request, session, user, dataset, examples, failed=failed, status=status)


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
    batch: Annotated[str, Form()] = "",
) -> Response:
    """Score every example of the dataset that has no score from the scorer yet."""
    dataset = service.get_dataset(session, name)
    values = {
        "scorer": scorer,
        "endpoint": endpoint,
        "model": model,
        "budget_usd": budget_usd,
        "batch": batch,
    }

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
            batch=batch == "true",
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
    examples = examples_context(session, dataset, "", "", "", "", None)
    notice = f"Saved the recipe {scorer.name}@{scorer.version}: score the dataset with it below."
    return render_dashboard(request, session, user, dataset, examples, notice=notice)
