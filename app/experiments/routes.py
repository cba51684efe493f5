"""JSON API of experiments: the list, one experiment's leaderboard, creating one and running it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.experiments import runs, service
from app.experiments.leaderboard import leaderboard
from app.experiments.schemas import ExperimentCreate
from app.platform.db import DB
from app.platform.jobs.schemas import JobOut
from app.platform.security import ApiAnnotator, ApiLead

router = APIRouter(prefix="/api/v1", tags=["experiments"])


@router.get("/experiments")
def list_experiments(session: DB, _: ApiAnnotator) -> list[dict[str, Any]]:
    """Every experiment, newest first: name, pool, budget and arms."""
    return [
        {"name": e.name, "budget": e.budget, "base_model": e.base_model,
         "heldout": len(e.heldout_ids), "arms": [a.name for a in service.arms_of(session, e)]}
        for e in service.list_experiments(session)
    ]  # fmt: skip


@router.post("/experiments", status_code=201)
def create_experiment(body: ExperimentCreate, session: DB, user: ApiLead) -> dict[str, Any]:
    """Create an experiment (the fields of `sift experiment create`); nothing runs yet. Its
    leaderboard comes back, every arm still empty."""
    return leaderboard(session, service.create_from_request(session, body, user))


@router.get("/experiments/{name}")
def get_experiment(name: str, session: DB, _: ApiAnnotator) -> dict[str, Any]:
    """The leaderboard: each arm's size, snapshot, run, held-out loss and IFEval metrics (value,
    low, high), each step's progress, and the arms' overlap (Jaccard, in the order of `arms`)."""
    return leaderboard(session, service.get_experiment(session, name))


@router.post("/experiments/{name}/run", status_code=202, response_model=JobOut)
def run_experiment(name: str, session: DB, user: ApiLead) -> JobOut:
    """Run what is missing of every arm, as one job that starts each step once the one before
    it has succeeded (the one already under way, if any); follow it at /api/v1/jobs/{id}."""
    job = runs.start_studio_run(session, service.get_experiment(session, name), user)
    session.flush()
    return JobOut.shown_to(job, user)
