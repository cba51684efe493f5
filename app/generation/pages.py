"""The generation page of a dataset: a form, a live estimate, and starting the job; and a page
with a generated example's provenance."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from app.datasets.service import dataset_url, get_dataset, get_example
from app.generation import prompts, service
from app.generation.methods import VARIANTS
from app.generation.spec import GenerationSpec
from app.models import User
from app.platform import forms
from app.platform.config import get_settings
from app.platform.db import DB
from app.platform.errors import InvalidInput, NotFound, SiftError
from app.platform.validation import Id
from app.platform.web import PageLead, PageUser, check_csrf, render

# Every state-changing request to these pages must carry the session's CSRF token.
router = APIRouter(dependencies=[Depends(check_csrf)], include_in_schema=False)


def _spec(dataset: str, fields: dict[str, str]) -> GenerationSpec:
    """The run a form describes; blank numbers take the method's defaults."""
    return GenerationSpec(
        method=fields.get("method", "self-instruct"),
        source=dataset,
        into=fields.get("into", "").strip() or f"{dataset}-generated",
        n=forms.integer(fields.get("n", ""), "n"),
        rounds=forms.integer(fields.get("rounds", ""), "rounds"),
        endpoint=fields.get("endpoint", "").strip() or service.DEFAULT_ENDPOINT,
        budget_usd=forms.number(fields.get("budget_usd", ""), "budget_usd"),
        variant=fields.get("variant", "alpaca"),
        seed=forms.integer(fields.get("seed", ""), "seed") or 0,
        batch=fields.get("batch", "") == "true",
    )


def _form_page(
    request: Request,
    session: Session,
    user: User,
    name: str,
    fields: dict[str, str],
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    dataset = get_dataset(session, name)
    context = {
        "user": user,
        "section": "datasets",
        "dataset": dataset,
        "base_url": dataset_url(dataset.name),
        "fields": fields,
        "methods": service.METHODS,
        "variants": VARIANTS,
        "rounds": service.DEFAULT_ROUNDS,
        "evol_operations": prompts.EVOL_INSTRUCT_METHODS,
        "quality_operations": tuple(prompts.QUALITY_METHODS),
        "endpoints": sorted(get_settings().llm),
        "error": error,
        **_estimate(session, name, fields),
    }
    return render(request, "generation/form.html", context, status_code=status)


def _estimate(session: Session, name: str, fields: dict[str, str]) -> dict[str, Any]:
    """The estimate for the form's values, or the reason there is none."""
    try:
        return {"estimate": service.estimate(session, _spec(name, fields)), "problem": None}
    except SiftError as exc:
        return {"estimate": None, "problem": exc.message}


@router.get("/datasets/{name}/generate")
def generate_form(request: Request, name: str, session: DB, user: PageLead) -> HTMLResponse:
    """The form that starts a generation run from this dataset."""
    fields = {"method": "self-instruct", "into": f"{name}-generated"}
    return _form_page(request, session, user, name, fields)


@router.get("/datasets/{name}/generate/estimate")
def estimate_fragment(request: Request, name: str, session: DB, user: PageLead) -> HTMLResponse:
    """The estimate of calls and cost for the form's current values (htmx)."""
    get_dataset(session, name)
    fields = {k: v for k, v in request.query_params.items() if k != "csrf_token"}
    context = {"user": user, **_estimate(session, name, fields)}
    return render(request, "generation/_estimate.html", context)


@router.post("/datasets/{name}/generate", response_model=None)
def start(
    request: Request,
    name: str,
    session: DB,
    user: PageLead,
    method: Annotated[str, Form()] = "self-instruct",
    into: Annotated[str, Form()] = "",
    n: Annotated[str, Form()] = "",
    rounds: Annotated[str, Form()] = "",
    endpoint: Annotated[str, Form()] = "",
    budget_usd: Annotated[str, Form()] = "",
    variant: Annotated[str, Form()] = "alpaca",
    seed: Annotated[str, Form()] = "",
    batch: Annotated[str, Form()] = "",
) -> Response:
    """Start the run and go to the jobs page, where its progress shows."""
    fields = {
        "method": method,
        "into": into,
        "n": n,
        "rounds": rounds,
        "endpoint": endpoint,
        "budget_usd": budget_usd,
        "variant": variant,
        "seed": seed,
        "batch": batch,
    }
    try:
        service.start_generation(session, _spec(name, fields), user=user)
    except InvalidInput as exc:
        return _form_page(request, session, user, name, fields, exc.message, status=422)
    return RedirectResponse("/jobs", status_code=303)


@router.get("/examples/{example_id}/provenance")
def provenance_page(request: Request, example_id: Id, session: DB, user: PageUser) -> HTMLResponse:
    """Where a generated example came from, with its variants side by side."""
    example = get_example(session, example_id)
    found = service.provenance_for(session, [example_id]).get(example_id)
    if found is None:
        raise NotFound(f"example {example_id} was not generated")
    context = {"user": user, "section": "datasets", "example": example, "provenance": found}
    return render(request, "generation/provenance.html", context)
