"""JSON API of experiments: the list, and one experiment's leaderboard."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.experiments import service
from app.experiments.leaderboard import leaderboard
from app.platform.db import DB
from app.platform.security import ApiAnnotator

router = APIRouter(prefix="/api/v1", tags=["experiments"])


@router.get("/experiments")
def list_experiments(session: DB, _: ApiAnnotator) -> list[dict[str, Any]]:
    """Every experiment, newest first: name, pool, budget and arms."""
    return [
        {"name": e.name, "budget": e.budget, "base_model": e.base_model,
         "arms": [a.name for a in service.arms_of(session, e)]}
        for e in service.list_experiments(session)
    ]  # fmt: skip


@router.get("/experiments/{name}")
def get_experiment(name: str, session: DB, _: ApiAnnotator) -> dict[str, Any]:
    """The leaderboard: each arm's size, snapshot, run and IFEval metrics (value, low, high),
    and the arms' overlap (Jaccard, in the order of `arms`)."""
    return leaderboard(session, service.get_experiment(session, name))
