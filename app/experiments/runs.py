"""Running an experiment: the steps of each arm in order (train, held-out loss, IFEval, then the
judge against the baseline), each started once and reused after; from the command line step by
step, from the studio and the API by one job that starts each step once the one before it has
succeeded and follows them to their end."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.experiments import service
from app.experiments.service import arms_of, get_experiment
from app.models import Example, Experiment, ExperimentArm, Job, User
from app.platform.cli.jobs import runs_here
from app.platform.db import transaction
from app.platform.errors import Conflict
from app.platform.jobs.dispatch import create_job, get_job, run_jobs_here
from app.platform.jobs.progress import Progress
from app.platform.jobs.runner import execute_job
from app.platform.sampling import one_of
from app.training import service as training

HELDOUT_KIND = "experiment-heldout"
RUN_KIND = "experiment-run"
ACTIVE = ("queued", "running")
ENDED_BADLY = ("failed", "cancelled", "paused_budget")

Start = Callable[[Session, Experiment, ExperimentArm], int | None]


def start_heldout(session: Session, experiment: Experiment, arm: ExperimentArm) -> int | None:
    """The job measuring the arm's trained model on the held-out split, started once its run
    has succeeded; its id while it still has to run, None once measured (or with no split)."""
    if not experiment.heldout_ids or arm.run_id is None:
        return None
    run = training.get_run(session, arm.run_id)
    if training.run_state(session, run) != "succeeded":
        return None
    if arm.heldout is not None and arm.heldout.get("run_id") == arm.run_id:
        return None
    if arm.heldout_job_id is not None:
        job = get_job(session, arm.heldout_job_id)
        if job.params.get("run_id") == arm.run_id:
            return job.id
    job = create_job(
        session,
        HELDOUT_KIND,
        {"experiment_id": experiment.id, "arm_id": arm.id, "run_id": arm.run_id},
        queue="gpu",
        total=len(experiment.heldout_ids),
    )
    arm.heldout_job_id = job.id
    return job.id


def retry_failed(session: Session, experiment: Experiment) -> None:
    """Forget the held-out measurements that failed, so that running again retries them (a
    failed run or evaluation is resumed or retried through its own domain)."""
    for arm in arms_of(session, experiment):
        job_id = arm.heldout_job_id
        if job_id is not None and get_job(session, job_id).state in ENDED_BADLY:
            arm.heldout_job_id = None


def heldout_conversations(session: Session, experiment: Experiment) -> list[list[dict[str, str]]]:
    """The held-out examples' conversations, in the split's order."""
    rows = dict(
        session.execute(
            select(Example.id, Example.messages).where(
                one_of(session, Example.id, experiment.heldout_ids)
            )
        ).all()
    )
    missing = [i for i in experiment.heldout_ids if i not in rows]
    if missing:
        raise Conflict(f"{len(missing):,} held-out examples were deleted from the pool")
    return [rows[i] for i in experiment.heldout_ids]


ARM_STEPS: tuple[tuple[str, Start], ...] = (
    ("training", service.start_run),
    ("held-out loss", start_heldout),
    ("IFEval", service.start_evaluation),
)
PAIRWISE: tuple[str, Start] = ("judged against the baseline", service.start_pairwise)


def plan(arm_names: list[str]) -> list[tuple[str, str, Start]]:
    """(arm, step, start) in order: each arm trained, measured and scored, then each judged
    against the baseline (whose run it needs)."""
    steps = [(a, step, start) for a in arm_names for step, start in ARM_STEPS]
    return steps + [(a, PAIRWISE[0], PAIRWISE[1]) for a in arm_names]


def start_step(experiment_name: str, arm_name: str, start: Start, session: Session) -> int | None:
    """One step of one arm started (or found) in `session`: its job's id while it has to run."""
    experiment = get_experiment(session, experiment_name)
    arm = next(a for a in arms_of(session, experiment) if a.name == arm_name)
    return start(session, experiment, arm)


def start_studio_run(session: Session, experiment: Experiment, user: User | None) -> Job:
    """The job that runs the whole experiment from the studio; the one already under way, if
    any, rather than a second."""
    if experiment.run_job_id is not None:
        job = get_job(session, experiment.run_job_id)
        if job.state in ACTIVE:
            return job
    retry_failed(session, experiment)
    steps = len(plan([a.name for a in arms_of(session, experiment)]))
    job = create_job(
        session, RUN_KIND, {"experiment_id": experiment.id}, queue="cpu", user=user, total=steps
    )
    experiment.run_job_id = job.id
    return job


def drive(experiment_name: str, progress: Progress, poll_s: float = 1.0) -> dict[str, Any]:
    """Start every step whose step before has succeeded, each in its own transaction so that
    the workers get it at once, until none is left to wait for; a step that failed ends the
    run, naming it and why."""
    with transaction() as session:
        names = [a.name for a in arms_of(session, get_experiment(session, experiment_name))]
    steps = plan(names)
    # The embedded default with no worker running (`sift serve` not started): the steps' jobs
    # run in this process, one after another, as `sift experiment run` runs them.
    here = runs_here()
    while True:
        waiting: set[str] = set()  # arms with a step still to run: their later steps wait
        done = 0
        for arm_name, step, start in steps:
            with transaction() as session:
                if here:
                    run_jobs_here(session)
                job_id = start_step(experiment_name, arm_name, start, session)
            if here and job_id is not None:
                execute_job(job_id, inline=True)
            with transaction() as session:
                job = get_job(session, job_id) if job_id is not None else None
                state, error = (job.state, job.error) if job else (None, None)
            if state in ENDED_BADLY:
                raise Conflict(f"arm {arm_name}: {step} {state}" + (f": {error}" if error else ""))
            if state is not None:
                waiting.add(arm_name)
            elif arm_name not in waiting and not (step == PAIRWISE[0] and waiting):
                done += 1
        progress(done, len(steps))
        if not waiting:
            return {"steps": len(steps)}
        time.sleep(poll_s)
