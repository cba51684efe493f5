"""Training runs: launching one (exactly once per idempotency key), following, cancelling and
resuming it. The training domain's public API is this module: what it defines, and what it
re-exports (imported `as` their own name) of the run's work in the worker (`execution`), its
artifacts and the trained model (`artifacts`) and the run folder's layout."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.jobs.service import cancel_job
from app.models import (
    Job,
    JobState,
    RunState,
    TrainingMetric,
    TrainingRun,
    User,
)
from app.models.base import utcnow
from app.platform.config import get_settings
from app.platform.errors import Conflict, InvalidInput, NotFound
from app.platform.jobs.dispatch import (
    canonical_params,
    create_job,
    reused_key,
    scoped_key,
    send_job,
)
from app.platform.jobs.schemas import hide_paths_in_text, hide_server_paths, sees_server_paths
from app.platform.local_models import check_model_path, converted_folder, is_gguf
from app.platform.model_paths import allowed_model_path
from app.platform.snapshots import find_snapshot
from app.training import layout
from app.training.artifacts import artifact_path as artifact_path
from app.training.artifacts import load_trained_model as load_trained_model
from app.training.chat_templates import missing_template
from app.training.data import IGNORE as IGNORE
from app.training.data import encode as encode
from app.training.execution import METRIC_FIELDS
from app.training.execution import execute_run as execute_run
from app.training.execution import store_metrics as store_metrics
from app.training.layout import final_dir as final_dir
from app.training.layout import run_dir as run_dir
from app.training.presets import PRESET_TEMPLATES
from app.training.presets import Method as Method
from app.training.presets import Template as Template
from app.training.presets import TrainingParams as TrainingParams
from app.training.presets import build_params as build_params

JOB_KIND = "train"
ACTIVE = frozenset({RunState.QUEUED.value, RunState.RUNNING.value})


# ---------------------------------------------------------------- launching


def derived_key(snapshot_id: int, base_model: str, params: TrainingParams) -> str:
    """A key for a launch without one: the same snapshot, model and config give the same run
    (to train the same thing again, change the seed)."""
    body = json.dumps([snapshot_id, base_model, params.model_dump()], sort_keys=True)
    return "derived:" + hashlib.sha256(body.encode()).hexdigest()


def check_base_model(base_model: str, template: str) -> str:
    """The base model (a folder or a GGUF file) as an absolute path; it must hold a config and a
    tokenizer with a chat template unless the run names one. A GGUF file that has not been
    converted yet is checked by its header only: the worker converts it (`sift train` does it
    first, and says so)."""
    if is_gguf(base_model):
        gguf = check_model_path(base_model, field="base_model")
        converted = converted_folder(gguf)
        if converted.is_dir():
            check_base_model(str(converted), template)
        return str(gguf)
    folder = allowed_model_path(base_model, field="base_model")
    if not (folder / "config.json").is_file():
        raise InvalidInput(
            f"base_model: {base_model} is not a model folder with a config.json", field="base_model"
        )
    if not (folder / "tokenizer_config.json").is_file():
        raise InvalidInput(f"base_model: {base_model} has no tokenizer", field="base_model")
    if template == "auto" and not _has_chat_template(folder):
        raise missing_template(base_model)
    return str(folder)


def template_fallback(base_model: str, params: TrainingParams) -> str | None:
    """The preset's own template when the run asks for the model's and the model has none
    (Alpaca and Vicuna presets); None when the run trains with what it asked for."""
    fallback = PRESET_TEMPLATES.get(params.preset)
    if params.template != "auto" or fallback is None:
        return None
    folder = allowed_model_path(base_model, field="base_model")
    if not (folder / "tokenizer_config.json").is_file() or _has_chat_template(folder):
        return None
    return fallback


def template_note(base_model: str, template: str, preset: str) -> str:
    """The line that says a preset's template stands in for a missing chat template."""
    return (
        f"the base model {base_model} has no chat template: "
        f"the {preset} preset trains with its own {template} template"
    )


def _has_chat_template(folder: Path) -> bool:
    if (folder / "chat_template.jinja").is_file() or (folder / "chat_template.json").is_file():
        return True
    config = json.loads((folder / "tokenizer_config.json").read_text())
    return bool(config.get("chat_template"))


def create_run(
    session: Session,
    snapshot_ref: int | str,
    base_model: str,
    params: TrainingParams,
    *,
    user: User | None = None,
    idempotency_key: str | None = None,
) -> tuple[TrainingRun, bool]:
    """A queued run and its job, in this transaction; (run, created). The same idempotency
    key (given or derived) gives the existing run back, also when two launches race."""
    snapshot_id = find_snapshot(session, snapshot_ref).id
    fallback = template_fallback(base_model, params)
    if fallback is not None:
        params = params.model_copy(update={"template": fallback})
    base_model = check_base_model(base_model, params.template)
    # A client's key is tied to its caller; the derived key is the content itself.
    key = scoped_key(user, idempotency_key) or derived_key(snapshot_id, base_model, params)
    existing = _by_key(session, key)
    if existing is not None:
        asked = (snapshot_id, base_model, canonical_params(params.model_dump()))
        if (existing.snapshot_id, existing.base_model, canonical_params(existing.params)) != asked:
            raise reused_key(idempotency_key)
        return existing, False
    try:
        with session.begin_nested():
            run = _insert_run(session, snapshot_id, base_model, params, user, key)
    except IntegrityError:
        # Another launch with this key committed first: its run is the one.
        existing = _by_key(session, key)
        if existing is None:
            raise
        return existing, False
    return run, True


def _by_key(session: Session, key: str) -> TrainingRun | None:
    return session.scalar(select(TrainingRun).where(TrainingRun.idempotency_key == key))


def _insert_run(
    session: Session,
    snapshot_id: int,
    base_model: str,
    params: TrainingParams,
    user: User | None,
    key: str,
) -> TrainingRun:
    run = TrainingRun(
        snapshot_id=snapshot_id,
        base_model=base_model,
        method=params.method,
        params=params.model_dump(),
        state=RunState.QUEUED.value,
        artifacts={},
        logs="",
        idempotency_key=key,
        created_by_id=user.id if user else None,
    )
    session.add(run)
    session.flush()
    run.output_dir = str(layout.run_dir(run.id))
    job = create_job(session, JOB_KIND, {"run_id": run.id}, queue="gpu", user=user)
    run.job_id = job.id
    session.flush()
    return run


# ---------------------------------------------------------------- reading


def get_run(session: Session, run_id: int) -> TrainingRun:
    """The run with this id; NotFound otherwise."""
    run = session.get(TrainingRun, run_id)
    if run is None:
        raise NotFound(f"no training run {run_id}")
    return run


def list_runs(session: Session, limit: int = 100) -> list[TrainingRun]:
    """The newest runs first."""
    query = select(TrainingRun).order_by(TrainingRun.id.desc()).limit(limit)
    return list(session.scalars(query))


def describe_runs(session: Session, runs: list[TrainingRun]) -> list[RunView]:
    """`describe` of each run, their jobs read in one query (not one per run)."""
    ids = [run.job_id for run in runs if run.job_id is not None]
    # Held until the end, the jobs stay in the session's identity map (which holds objects
    # weakly): run_job's session.get finds them there without SQL.
    _jobs = session.scalars(select(Job).where(Job.id.in_(ids))).all() if ids else []
    return [describe(session, run) for run in runs]


def run_job(session: Session, run: TrainingRun) -> Job | None:
    """The job that trains the run."""
    return session.get(Job, run.job_id) if run.job_id is not None else None


def run_state(session: Session, run: TrainingRun) -> str:
    """The run's live state. Its job says whether it is queued or running (the run row is
    written with the job's final commit); a running job whose worker has been silent for
    longer than `job_stale_after_s` is `stalled`: its worker died, and it can resume."""
    if run.state in (RunState.SUCCEEDED.value, RunState.CANCELLED.value):
        return run.state
    job = run_job(session, run)
    if job is None:
        return run.state
    if job.state == JobState.RUNNING.value and _silent(run, job):
        return RunState.STALLED.value
    if job.state in (JobState.QUEUED.value, JobState.RUNNING.value):
        return job.state
    if job.state == JobState.SUCCEEDED.value:
        return run.state if run.state == RunState.SUCCEEDED.value else RunState.FAILED.value
    return job.state if job.state in RunState.__members__.values() else RunState.FAILED.value


def _silent(run: TrainingRun, job: Job) -> bool:
    beats = [job.heartbeat_at.timestamp()] if job.heartbeat_at else []
    touched = layout.last_heartbeat(layout.run_dir(run.id))
    if touched is not None:
        beats.append(touched)
    if not beats:
        return False
    return time.time() - max(beats) > get_settings().job_stale_after_s


def run_metrics(session: Session, run: TrainingRun) -> list[dict[str, Any]]:
    """The run's metrics by step: the stored rows, and while it trains the lines its worker
    has written to the run folder so far."""
    rows: dict[int, dict[str, Any]] = {}
    for metric in session.scalars(
        select(TrainingMetric).where(TrainingMetric.run_id == run.id).order_by(TrainingMetric.step)
    ):
        rows[metric.step] = {"step": metric.step} | {f: getattr(metric, f) for f in METRIC_FIELDS}
    if run.state != RunState.SUCCEEDED.value:
        for line in layout.read_metrics(layout.run_dir(run.id)):
            rows[int(line["step"])] = {"step": int(line["step"])} | {
                f: line.get(f) for f in METRIC_FIELDS
            }
    return [rows[step] for step in sorted(rows)]


def run_logs(run: TrainingRun) -> str:
    """The run's log: the live file while it exists, else what the run stored."""
    return layout.log_tail(layout.run_dir(run.id)) or run.logs or ""


# ---------------------------------------------------------------- cancel and resume


def cancel_run(session: Session, run: TrainingRun) -> TrainingRun:
    """Stop a queued or running run (it checkpoints first); cancelling twice is no error."""
    state = run_state(session, run)
    if state == RunState.CANCELLED.value:
        # Its job may have been cancelled on its own (the jobs page): say so here too.
        run.state = RunState.CANCELLED.value
        run.finished_at = run.finished_at or utcnow()
        return run
    if state not in (*ACTIVE, RunState.STALLED.value):
        raise Conflict(f"training run {run.id} has already {state}", state=state)
    if run.job_id is not None:
        cancel_job(session, run.job_id)
    run.state = RunState.CANCELLED.value
    run.finished_at = utcnow()
    return run


def resume_run(session: Session, run: TrainingRun) -> TrainingRun:
    """Queue a failed, cancelled or stalled run again; it goes on from its last checkpoint."""
    state = run_state(session, run)
    if state not in (RunState.FAILED.value, RunState.CANCELLED.value, RunState.STALLED.value):
        raise Conflict(
            f"training run {run.id} is {state}; only failed, cancelled or stalled runs resume",
            state=state,
        )
    job = run_job(session, run)
    if job is None:
        raise Conflict(f"training run {run.id} has lost its job")
    job.state = JobState.QUEUED.value
    job.error = None
    job.attempts = 0
    job.finished_at = None
    run.state = RunState.QUEUED.value
    run.finished_at = None
    send_job(session, job)
    return run


@dataclass(frozen=True)
class RunView:
    """A run as the API and the pages show it: its live state and step; metrics and the end
    of its log only for the full view."""

    id: int
    snapshot_id: int
    base_model: str
    method: str
    state: str
    params: dict[str, Any]
    job_id: int | None
    step: int
    total_steps: int | None
    output_dir: str | None
    created_at: datetime
    finished_at: datetime | None
    error: str | None
    checkpoints: list[int]
    metrics: list[dict[str, Any]] | None
    logs: str | None


def shown_to(view: RunView, user: User | None) -> RunView:
    """The run as `user` may see it: an annotator gets the base model's folder name but no
    server path, no output folder and no log (which is full of paths)."""
    if sees_server_paths(user):
        return view
    return replace(
        view,
        base_model=Path(view.base_model).name,
        output_dir=None,
        logs=None,
        params=hide_server_paths(view.params),
        error=hide_paths_in_text(view.error),
    )


def describe(session: Session, run: TrainingRun, *, full: bool = False) -> RunView:
    """The run as the API and the pages show it: live state and step, metrics and logs when
    `full`."""
    job = run_job(session, run)
    metrics = run_metrics(session, run) if full else None
    step = job.done if job else 0
    if metrics:
        step = max(step, metrics[-1]["step"])
    return RunView(
        id=run.id,
        snapshot_id=run.snapshot_id,
        base_model=run.base_model,
        method=run.method,
        state=run_state(session, run),
        params=run.params,
        job_id=run.job_id,
        step=step,
        total_steps=job.total if job else None,
        output_dir=run.output_dir,
        created_at=run.created_at,
        finished_at=run.finished_at or (job.finished_at if job else None),
        error=job.error if job else None,
        checkpoints=layout.checkpoints(layout.run_dir(run.id)),
        metrics=metrics,
        logs=run_logs(run) if full else None,
    )
