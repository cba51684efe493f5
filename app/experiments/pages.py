"""Experiment pages: the list, and one experiment's leaderboard with intervals and overlap."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from app.experiments import service
from app.experiments.leaderboard import METRICS, leaderboard
from app.platform.db import DB
from app.platform.web import PageUser, check_csrf, render

router = APIRouter(dependencies=[Depends(check_csrf)], include_in_schema=False)


@router.get("/experiments")
def experiments_page(request: Request, session: DB, user: PageUser) -> HTMLResponse:
    """Every experiment with its arms."""
    rows = [(e, service.arms_of(session, e)) for e in service.list_experiments(session)]
    context = {"user": user, "section": "experiments", "experiments": rows}
    return render(request, "experiments/list.html", context)


@router.get("/experiments/{name}")
def experiment_page(request: Request, name: str, session: DB, user: PageUser) -> HTMLResponse:
    """The leaderboard: a row per arm, each metric with its 95% interval, and the overlap."""
    board = leaderboard(session, service.get_experiment(session, name))
    context = {"user": user, "section": "experiments", "board": board, "metrics": METRICS}
    return render(request, "experiments/detail.html", context)
