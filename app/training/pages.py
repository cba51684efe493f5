"""The training pages: runs with a "new run" form for leads, and one run, live."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Collection, Role, Snapshot, TrainingRun, User
from app.platform.db import DB
from app.platform.errors import SiftError
from app.platform.validation import Id
from app.platform.web import PageLead, PageUser, act, check_csrf, render
from app.training import layout, service
from app.training.charts import curve
from app.training.presets import PRESETS, TrainingParams, build_params, invalid_input
from app.training.schemas import RunCreate

# Every state-changing request to these pages must carry the session's CSRF token.
router = APIRouter(dependencies=[Depends(check_csrf)], include_in_schema=False)


async def form_fields(request: Request) -> dict[str, str]:
    """The posted form's non-empty fields (an empty field keeps the preset's value)."""
    form = await request.form()
    return {k: str(v).strip() for k, v in form.items() if isinstance(v, str) and v.strip()}


FormFields = Annotated[dict[str, str], Depends(form_fields)]


def _snapshots(session: Session) -> list[tuple[Snapshot, str]]:
    query = (
        select(Snapshot, Collection.name)
        .join(Collection, Collection.id == Snapshot.collection_id)
        .order_by(Snapshot.id.desc())
        .limit(200)
    )
    return [(s, name) for s, name in session.execute(query)]


def _preset_values() -> dict[str, dict[str, Any]]:
    defaults = TrainingParams().model_dump()
    return {name: {**defaults, **values} for name, values in PRESETS.items()} | {"custom": defaults}


def _list_page(
    request: Request,
    session: Session,
    user: User,
    *,
    error: str | None = None,
    entered: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    views = service.describe_runs(session, service.list_runs(session))
    runs = [service.shown_to(view, user) for view in views]
    presets = _preset_values()
    chosen = (entered or {}).get("preset", "alpaca")
    context = {
        "user": user,
        "section": "training",
        "runs": runs,
        "polling": any(r.state in service.ACTIVE for r in runs),
        "can_launch": user.has_role(Role.LEAD),
        "snapshots": _snapshots(session),
        "presets": presets,
        "values": {**presets.get(chosen, presets["custom"]), **(entered or {})},
        "nonce": secrets.token_urlsafe(16),
        "error": error,
    }
    return render(
        request, "training/list.html", context, fragment="training/_runs.html", status_code=status
    )


@router.get("/training")
def runs_page(request: Request, session: DB, user: PageUser) -> HTMLResponse:
    """Every run with its live state; leads also get the new run form."""
    return _list_page(request, session, user)


@router.post("/training", response_model=None)
def launch(request: Request, session: DB, user: PageLead, fields: FormFields) -> Response:
    """Start a run from the form; the form's nonce makes a double submit one run."""
    nonce = fields.pop("nonce", "")
    fields.pop("csrf_token", None)
    try:
        body = RunCreate.model_validate(fields)
        params = build_params(body.preset, **body.overrides())
        run, _ = service.create_run(
            session,
            body.snapshot_id,
            body.base_model,
            params,
            user=user,
            idempotency_key=f"form:{nonce}" if nonce else None,
        )
    except (ValidationError, SiftError) as exc:
        error = invalid_input(exc) if isinstance(exc, ValidationError) else exc
        return _list_page(
            request, session, user, error=error.message, entered=fields, status=error.status_code
        )
    return RedirectResponse(f"/training/{run.id}", status_code=303)


def _run_page(
    request: Request, session: Session, user: User, run: TrainingRun, notice: str | None = None
) -> HTMLResponse:
    view = service.shown_to(service.describe(session, run, full=True), user)
    metrics = view.metrics or []
    speeds = [m["tokens_per_s"] for m in metrics if m["tokens_per_s"]]
    context = {
        "user": user,
        "section": "training",
        "run": view,
        "loss": curve([(m["step"], m["loss"]) for m in metrics]),
        "lr": curve([(m["step"], m["learning_rate"]) for m in metrics]),
        "tokens_per_s": speeds[-1] if speeds else None,
        "last": metrics[-1] if metrics else None,
        "polling": view.state in service.ACTIVE,
        "is_lead": user.has_role(Role.LEAD),
        "artifacts": layout.artifact_files(layout.run_dir(run.id)),
        "notice": notice,
    }
    return render(request, "training/detail.html", context, fragment="training/_live.html")


@router.get("/training/{run_id}")
def run_page(request: Request, run_id: Id, session: DB, user: PageUser) -> HTMLResponse:
    """One run, live: state, step, loss and learning-rate curves, tokens/s, logs."""
    return _run_page(request, session, user, service.get_run(session, run_id))


@router.post("/training/{run_id}/cancel", response_model=None)
def cancel(request: Request, run_id: Id, session: DB, user: PageLead) -> Response:
    """Stop the run after a checkpoint."""
    run = service.get_run(session, run_id)
    return act(
        request,
        lambda: service.cancel_run(session, run),
        lambda notice: _run_page(request, session, user, run, notice),
        f"/training/{run.id}",
    )


@router.post("/training/{run_id}/resume", response_model=None)
def resume(request: Request, run_id: Id, session: DB, user: PageLead) -> Response:
    """Queue the run again from its last checkpoint."""
    run = service.get_run(session, run_id)
    return act(
        request,
        lambda: service.resume_run(session, run),
        lambda notice: _run_page(request, session, user, run, notice),
        f"/training/{run.id}",
    )


@router.get("/training/{run_id}/artifacts/{path:path}", response_class=FileResponse)
def download(run_id: Id, path: str, session: DB, _: PageLead) -> FileResponse:
    """One file of the run's final artifact (leads only)."""
    file = service.artifact_path(service.get_run(session, run_id), path)
    return FileResponse(file, filename=file.name)
