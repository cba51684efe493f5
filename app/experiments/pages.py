"""Experiment pages: the list with a create form for leads, and one experiment's leaderboard with
intervals, live progress, a Run button, the overlap and the arms' score distributions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.experiments import runs, service
from app.experiments.distributions import distributions, pool_scorers
from app.experiments.leaderboard import HELDOUT, METRICS, leaderboard
from app.experiments.schemas import ExperimentCreate
from app.models import Dataset, Role, User
from app.platform.db import DB
from app.platform.errors import InvalidInput, SiftError
from app.platform.jobs.dispatch import get_job
from app.platform.jobs.schemas import hide_paths_in_text, sees_server_paths
from app.platform.web import PageLead, PageUser, check_csrf, render

router = APIRouter(dependencies=[Depends(check_csrf)], include_in_schema=False)

# The form's fields besides the arms and the `NAME=VALUE` lines of other settings.
TEXT_FIELDS = ("name", "dataset", "base_model", "preset", "method", "template", "eval",
               "judge", "test_set", "baseline")  # fmt: skip
NUMBER_FIELDS = ("budget", "max_steps", "max_tokens", "heldout")


def _list_page(
    request: Request,
    session: Session,
    user: User,
    *,
    error: str | None = None,
    entered: dict[str, Any] | None = None,
    status: int = 200,
) -> HTMLResponse:
    rows = [(e, service.arms_of(session, e)) for e in service.list_experiments(session)]
    values = {"arms": ["random", "longest"], "preset": "alpaca", "eval": "ifeval:100",
              "max_tokens": "512", "heldout": "0.05"} | (entered or {})  # fmt: skip
    context = {
        "user": user,
        "section": "experiments",
        "experiments": rows,
        "can_create": user.has_role(Role.LEAD),
        "datasets": list(session.scalars(select(Dataset.name).order_by(Dataset.name))),
        "values": values,
        "error": error,
    }
    return render(request, "experiments/list.html", context, status_code=status)


@router.get("/experiments")
def experiments_page(request: Request, session: DB, user: PageUser) -> HTMLResponse:
    """Every experiment with its arms; leads also get the form that creates one."""
    return _list_page(request, session, user)


def _read_form(fields: dict[str, Any]) -> ExperimentCreate:
    """The form as the API's body: blank fields left out, other settings read from lines."""
    body: dict[str, Any] = {k: fields[k] for k in (*TEXT_FIELDS, *NUMBER_FIELDS) if fields.get(k)}
    body["arms"] = [a for a in fields.get("arms", []) if a]
    settings: dict[str, str] = {}
    for line in str(fields.get("settings", "")).splitlines():
        if not line.strip():
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            raise InvalidInput(f"settings: {line.strip()!r}: write NAME=VALUE", field="settings")
        settings[name.strip()] = value.strip()
    body["settings"] = settings
    try:
        return ExperimentCreate.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "experiment"
        raise InvalidInput(f"{field}: {first['msg']}", field=field) from None


@router.post("/experiments", response_model=None)
async def create(request: Request, session: DB, user: PageLead) -> Response:
    """Create an experiment from the form; its page follows, with the Run button."""
    form = await request.form()
    fields: dict[str, Any] = {k: str(v).strip() for k, v in form.items() if isinstance(v, str)}
    fields["arms"] = [str(a).strip() for a in form.getlist("arm") if isinstance(a, str)]
    try:
        made = service.create_from_request(session, _read_form(fields), user)
    except SiftError as exc:
        session.rollback()
        return _list_page(request, session, user, error=exc.message, entered=fields,
                          status=exc.status_code)  # fmt: skip
    return RedirectResponse(f"/experiments/{made.name}", status_code=303)


def _scales(board: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """Each metric's strip, left and right ends: 0 to 1 for accuracies; for the held-out loss,
    the arms' intervals with a margin, so that close losses stay apart on the page."""
    shown = [a["metrics"][HELDOUT] for a in board["arms"] if HELDOUT in a["metrics"]]
    shown = [m for m in shown if m["value"] is not None]
    scales = {metric: (0.0, 1.0) for metric in METRICS}
    if shown:
        low, high = min(m["low"] for m in shown), max(m["high"] for m in shown)
        margin = max((high - low) * 0.1, 1e-6)
        scales[HELDOUT] = (low - margin, high + margin)
    return scales


def _active(session: Session, board: dict[str, Any], run_job_id: int | None) -> bool:
    if run_job_id is not None and get_job(session, run_job_id).state in runs.ACTIVE:
        return True
    return any(
        step and step["state"] in runs.ACTIVE
        for arm in board["arms"]
        for step in arm["steps"].values()
    )


@router.get("/experiments/{name}")
def experiment_page(
    request: Request,
    name: str,
    session: DB,
    user: PageUser,
    scorer: str | None = None,
) -> HTMLResponse:
    """The leaderboard, live while a step runs; the overlap; the score distributions."""
    experiment = service.get_experiment(session, name)
    board = leaderboard(session, experiment)
    scorers = pool_scorers(session, session.get_one(Dataset, experiment.dataset_id))
    chosen = scorer if scorer in scorers else (scorers[0] if scorers else None)
    run_job = get_job(session, experiment.run_job_id) if experiment.run_job_id else None
    context = {
        "user": user,
        "section": "experiments",
        "board": board,
        "metrics": METRICS,
        "scales": _scales(board),
        "polling": _active(session, board, experiment.run_job_id),
        "run_job": run_job,
        # A failed step's error may name server paths: leads and admins see them, others not.
        "run_error": (
            run_job.error if sees_server_paths(user) else hide_paths_in_text(run_job.error)
        )
        if run_job
        else None,
        "can_run": user.has_role(Role.LEAD),
        "scorers": scorers,
        "scorer": chosen,
        "spread": distributions(session, service.arms_of(session, experiment), chosen)
        if chosen
        else None,
    }
    return render(request, "experiments/detail.html", context, fragment="experiments/_board.html")


@router.post("/experiments/{name}/run", response_model=None)
def run(request: Request, name: str, session: DB, user: PageLead) -> Response:
    """Run what is missing of every arm (one job, followed live on the page)."""
    runs.start_studio_run(session, service.get_experiment(session, name), user)
    return RedirectResponse(f"/experiments/{name}", status_code=303)
