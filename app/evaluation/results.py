"""An evaluation's results as the API, the pages and the CLI show them: its state, progress,
totals and winning score, and the win / tie / lose bars of models compared on test sets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.evaluation import judge
from app.models import EvalRun, EvalTestSet, Job

PAIRWISE = "pairwise"
IFEVAL_METRICS = ("prompt_strict", "prompt_loose", "instruction_strict", "instruction_loose")


@dataclass(frozen=True)
class EvaluationSummary:
    """One evaluation: what it compares, where it stands, and its totals."""

    id: int
    kind: str  # pairwise or ifeval
    model_a: str
    model_b: str
    test_set: str
    judge: str
    judge_prompt: str | None
    generation: dict[str, Any]
    # The job knows whether it is queued, paused or cancelled; the run whether it is done.
    state: str
    job_id: int | None
    job_error: str | None
    done: int
    total: int
    wins: int
    ties: int
    losses: int
    errors: int
    winning_score: float | None
    # IFEval: prompt_strict, prompt_loose, instruction_strict, instruction_loose, prompts,
    # instructions and by_instruction; empty for a pairwise evaluation.
    metrics: dict[str, Any]
    created_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class BarRow:
    """One bar: the newest result of a comparison on one test set."""

    label: str
    run_id: int
    wins: int
    ties: int
    losses: int
    errors: int


@dataclass(frozen=True)
class Comparison:
    """Two models under one judge and judge prompt, a bar per test set."""

    model_a: str
    model_b: str
    judge: str
    judge_prompt: str
    rows: list[BarRow]


def summary(session: Session, run: EvalRun) -> EvaluationSummary:
    """An evaluation as the API and pages show it: state, progress, totals, winning score."""
    job = session.get(Job, run.job_id) if run.job_id else None
    return _summary(run, job, session.get(EvalTestSet, run.test_set_id))


def summaries(session: Session, runs: list[EvalRun]) -> list[EvaluationSummary]:
    """`summary` of each run, their jobs and test sets read in one query each."""
    job_ids = [run.job_id for run in runs if run.job_id]
    jobs = {j.id: j for j in session.scalars(select(Job).where(Job.id.in_(job_ids)))}
    set_ids = {run.test_set_id for run in runs}
    sets = {
        t.id: t for t in session.scalars(select(EvalTestSet).where(EvalTestSet.id.in_(set_ids)))
    }
    return [
        _summary(run, jobs.get(run.job_id) if run.job_id else None, sets.get(run.test_set_id))
        for run in runs
    ]


def _summary(run: EvalRun, job: Job | None, prompts: EvalTestSet | None) -> EvaluationSummary:
    total = prompts.prompt_count if prompts is not None else 0
    if run.params.get("limit"):
        total = min(total, run.params["limit"])
    return EvaluationSummary(
        id=run.id,
        kind=run.kind,
        model_a=run.model_a,
        model_b=run.model_b,
        test_set=run.test_set,
        judge=run.judge,
        judge_prompt=run.params.get("judge_prompt"),
        generation=run.params.get("generation", {}),
        state=job.state if job is not None else run.state,
        job_id=run.job_id,
        job_error=job.error if job is not None else None,
        done=job.done if job is not None else 0,
        total=total,
        wins=run.wins,
        ties=run.ties,
        losses=run.losses,
        errors=run.errors,
        winning_score=(
            judge.winning_score(run.wins, run.ties, run.losses) if run.kind == PAIRWISE else None
        ),
        metrics=run.metrics or {},
        created_at=run.created_at,
        finished_at=run.finished_at,
    )


def comparisons(runs: list[EvalRun]) -> list[Comparison]:
    """For each pair of models and judge, the newest result per test set: the rows of the
    win / tie / lose bars."""
    groups: dict[tuple[str, str, str, str], dict[str, EvalRun]] = {}
    for run in sorted(runs, key=lambda r: r.id):
        if run.kind != PAIRWISE:
            continue
        key = (run.model_a, run.model_b, run.judge, str(run.params.get("judge_prompt")))
        if run.wins + run.ties + run.losses + run.errors:
            groups.setdefault(key, {})[run.test_set] = run
    return [
        Comparison(
            model_a=a,
            model_b=b,
            judge=j,
            judge_prompt=p,
            rows=[
                BarRow(
                    label=name,
                    run_id=run.id,
                    wins=run.wins,
                    ties=run.ties,
                    losses=run.losses,
                    errors=run.errors,
                )
                for name, run in sorted(by_set.items())
            ],
        )
        for (a, b, j, p), by_set in groups.items()
    ]
