"""The leaderboard: per arm its size, snapshot, run and IFEval metrics, each with a bootstrap 95%
interval over prompts (seeded), and the arms' overlap (Jaccard of their selections)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.evaluation import service as evaluation
from app.experiments.service import arms_of
from app.models import Experiment, ExperimentArm, SnapshotItem, TrainingRun
from app.training import service as training

METRICS = ("prompt_strict", "prompt_loose", "instruction_strict", "instruction_loose")
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


def _metrics(session: Session, arm: ExperimentArm) -> dict[str, Any]:
    if arm.eval_id is None:
        return {}
    run = evaluation.get_evaluation(session, arm.eval_id)
    items = evaluation.list_items(session, run)
    checked = [i.raw for i in items if i.state == "ok" and "strict" in i.raw]
    return {
        name: bootstrap([c["loose" if name.endswith("loose") else "strict"] for c in checked], name)
        for name in METRICS
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
            "pairwise": _pairwise(session, experiment, arm),
        })  # fmt: skip
    return {
        "name": experiment.name,
        "budget": experiment.budget,
        "base_model": experiment.base_model,
        "baseline": experiment.evaluation.get("baseline"),
        "judge": experiment.evaluation.get("judge"),
        "arms": rows,
        "overlap": jaccard(selections),
    }
