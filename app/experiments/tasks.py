"""Job handlers of the experiments domain: an arm's held-out loss, and the studio's run."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.experiments import heldout, runs
from app.experiments.leaderboard import heldout_bootstrap
from app.models import Experiment, ExperimentArm, Job
from app.platform.errors import NotFound
from app.platform.jobs.progress import Progress
from app.platform.jobs.registry import job_handler
from app.training import service as training


@job_handler(runs.HELDOUT_KIND, queue="gpu")
def measure_heldout(session: Session, job: Job, progress: Progress) -> dict[str, Any]:
    """The arm's trained model's loss on every held-out example, kept on the arm."""
    arm = session.get(ExperimentArm, job.params["arm_id"])
    experiment = session.get(Experiment, job.params["experiment_id"])
    if arm is None or experiment is None:
        raise NotFound(f"the experiment arm of job {job.id} no longer exists")
    run = training.get_run(session, job.params["run_id"])
    conversations = runs.heldout_conversations(session, experiment)
    progress(0, len(conversations), force=True)
    model, tokenizer = training.load_trained_model(run)
    measured = heldout.example_losses(
        model, tokenizer, conversations, int(run.params["max_seq_length"]),
        on_batch=lambda done: progress(done, len(conversations)),
    )  # fmt: skip
    arm.heldout = measured.as_json(run.id)
    summary = heldout_bootstrap(measured.losses, measured.tokens, resamples=1)
    loss = summary["value"]
    return {"examples": len(conversations), "loss": None if loss is None else round(loss, 4)}


@job_handler(runs.RUN_KIND, queue="cpu")
def run_experiment(session: Session, job: Job, progress: Progress) -> dict[str, Any]:
    """Every arm's steps, each started once the one before it has succeeded."""
    experiment = session.get(Experiment, job.params["experiment_id"])
    if experiment is None:
        raise NotFound(f"the experiment of job {job.id} no longer exists")
    name = experiment.name
    session.rollback()  # hold nothing while the steps run, hours perhaps
    return runs.drive(name, progress)
