"""The leaderboard: per arm its size, snapshot, run, held-out loss and IFEval metrics, each with a
bootstrap 95% interval (over held-out examples or prompts, seeded), each step's progress, and the
arms' overlap (Jaccard of their selections)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.evaluation import service as evaluation
from app.experiments import heldout
from app.experiments.service import arms_of
from app.models import Experiment, ExperimentArm, SnapshotItem, TrainingRun
from app.platform.jobs.dispatch import get_job
from app.training import service as training

IFEVAL_METRICS = ("prompt_strict", "prompt_loose", "instruction_strict", "instruction_loose")
HELDOUT = "heldout_loss"  # lower is better
METRICS = (HELDOUT, *IFEVAL_METRICS)
RESAMPLES = 1_000
SEED = 0


def bootstrap(
    followed: Sequence[Sequence[bool]], metric: str, resamples: int = RESAMPLES
) -> dict[str, float | None]:
    """An IFEval metric over prompts (each prompt's instructions followed or not) and its
    percentile 95% interval from resampling the prompts with replacement (seeded)."""
    if not followed:
        return {"value": None, "low": None, "high": None}
    every = np.array([all(f) for f in followed], dtype=float)
    passed = np.array([sum(f) for f in followed], dtype=float)
    counts = np.array([len(f) for f in followed], dtype=float)

    def value(rows: np.ndarray) -> np.ndarray:
        if metric.startswith("prompt"):
            return every[rows].mean(axis=-1)
        return passed[rows].sum(axis=-1) / np.maximum(counts[rows].sum(axis=-1), 1)

    rows = np.random.default_rng(SEED).integers(0, len(followed), (resamples, len(followed)))
    spread = value(rows)
    return {
        "value": float(value(np.arange(len(followed)))),
        "low": float(np.percentile(spread, 2.5)),
        "high": float(np.percentile(spread, 97.5)),
    }


def _selection(session: Session, arm: ExperimentArm) -> set[int]:
    if arm.snapshot_id is None:
        return set()
    query = select(SnapshotItem.example_id).where(SnapshotItem.snapshot_id == arm.snapshot_id)
    return {i for i in session.scalars(query) if i is not None}


def jaccard(sets: Sequence[set[int]]) -> list[list[float | None]]:
    """|A and B| / |A or B| for every pair, in order; None where both are empty."""
    return [
        [len(a & b) / len(a | b) if a | b else None for b in sets]
        for a in sets
    ]  # fmt: skip


def heldout_bootstrap(
    losses: Sequence[float | None], tokens: Sequence[int], resamples: int = RESAMPLES
) -> dict[str, float | None]:
    """The held-out loss per token and its percentile 95% interval from resampling the
    examples with replacement (seeded); examples with no token measured are left out."""
    kept = [(loss, n) for loss, n in zip(losses, tokens, strict=True) if loss is not None and n]
    if not kept:
        return {"value": None, "low": None, "high": None}
    values, counts = [k[0] for k in kept], [k[1] for k in kept]
    rows = np.random.default_rng(SEED).integers(0, len(kept), (resamples, len(kept)))
    spread = heldout.mean_token_loss(values, counts, rows)
    return {
        "value": float(heldout.mean_token_loss(values, counts, np.arange(len(kept)))),
        "low": float(np.percentile(spread, 2.5)),
        "high": float(np.percentile(spread, 97.5)),
    }


def _metrics(session: Session, arm: ExperimentArm) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if arm.heldout is not None and arm.heldout.get("run_id") == arm.run_id:
        found[HELDOUT] = heldout_bootstrap(arm.heldout["losses"], arm.heldout["tokens"])
    if arm.eval_id is None:
        return found
    run = evaluation.get_evaluation(session, arm.eval_id)
    items = evaluation.list_items(session, run)
    checked = [i.raw for i in items if i.state == "ok" and "strict" in i.raw]
    return found | {
        name: bootstrap([c["loose" if name.endswith("loose") else "strict"] for c in checked], name)
        for name in IFEVAL_METRICS
    }


def _job_progress(session: Session, job_id: int | None) -> dict[str, Any] | None:
    """A step's job as a cell shows it: its state and how far it is."""
    if job_id is None:
        return None
    job = get_job(session, job_id)
    return {"job": job.id, "state": job.state, "done": job.done, "total": job.total}


def _steps(session: Session, arm: ExperimentArm, run: TrainingRun | None) -> dict[str, Any]:
    done = evaluation.get_evaluation(session, arm.eval_id) if arm.eval_id else None
    training_job = training.run_job(session, run) if run else None
    return {
        "training": _job_progress(session, training_job.id if training_job else None),
        "heldout": _job_progress(session, arm.heldout_job_id),
        "ifeval": _job_progress(session, done.job_id if done else None),
    }


def _pairwise(
    session: Session, experiment: Experiment, arm: ExperimentArm
) -> dict[str, Any] | None:
    if arm.pairwise_id is None:
        return None
    run = evaluation.get_evaluation(session, arm.pairwise_id)
    return {
        "against": experiment.evaluation.get("baseline"),
        "evaluation": run.id,
        "state": run.state,
        "wins": run.wins,
        "ties": run.ties,
        "losses": run.losses,
        "errors": run.errors,
    }


def leaderboard(session: Session, experiment: Experiment) -> dict[str, Any]:
    """What `sift experiment show --json` prints: the arms in order with their size, snapshot,
    run (and its state), IFEval state and metrics, and the overlap matrix in the same order."""
    arms = arms_of(session, experiment)
    selections = [_selection(session, arm) for arm in arms]
    rows = []
    for arm, chosen in zip(arms, selections, strict=True):
        run = session.get(TrainingRun, arm.run_id) if arm.run_id else None
        done = evaluation.get_evaluation(session, arm.eval_id) if arm.eval_id else None
        rows.append({
            "name": arm.name,
            "size": len(chosen) if arm.snapshot_id else None,
            "snapshot": arm.snapshot_id,
            "run": arm.run_id,
            "run_state": training.run_state(session, run) if run else None,
            "evaluation": arm.eval_id,
            "evaluation_state": done.state if done else None,
            "metrics": _metrics(session, arm),
            "heldout_skipped": (arm.heldout or {}).get("skipped"),
            "steps": _steps(session, arm, run),
            "pairwise": _pairwise(session, experiment, arm),
        })  # fmt: skip
    return {
        "name": experiment.name,
        "budget": experiment.budget,
        "base_model": experiment.base_model,
        "baseline": experiment.evaluation.get("baseline"),
        "judge": experiment.evaluation.get("judge"),
        "heldout": len(experiment.heldout_ids),
        "arms": rows,
        "overlap": jaccard(selections),
    }
