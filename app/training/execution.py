"""A training run's work in the worker: its inputs written to the run folder, the training
supervised (in this process, or one process per GPU), and metrics, artifacts and logs recorded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Job, RunState, SnapshotItem, TrainingMetric, TrainingRun
from app.models.base import utcnow
from app.platform.db import release, side_transaction, upsert_where
from app.platform.jobs.progress import JobCancelled, Progress
from app.platform.local_models import model_folder
from app.training import layout
from app.training.presets import TrainingParams

METRIC_FIELDS = ("loss", "learning_rate", "tokens_per_s", "epoch")


def write_inputs(session: Session, run: TrainingRun, folder: Path) -> int:
    """Write the run's exact config and the snapshot's conversations into its folder; the
    snapshot is frozen, so a second write gives the same files."""
    spec = {
        "run_id": run.id,
        "snapshot_id": run.snapshot_id,
        "base_model": run.base_model,
        "method": run.method,
        "params": run.params,
    }
    layout.write_spec(folder, spec)
    query = (
        select(SnapshotItem.messages)
        .where(SnapshotItem.snapshot_id == run.snapshot_id)
        .order_by(SnapshotItem.position)
    )
    count = 0
    partial_file = layout.data_file(folder).with_suffix(".partial")
    with partial_file.open("w", encoding="utf-8") as handle:
        for messages in session.scalars(query):
            handle.write(json.dumps(messages, ensure_ascii=False) + "\n")
            count += 1
    partial_file.replace(layout.data_file(folder))
    return count


def execute_run(session: Session, run: TrainingRun, progress: Progress) -> dict[str, Any]:
    """Train the run (from its last checkpoint) and record metrics, artifacts and logs in
    `session`. A run whose final artifact exists is only recorded again."""
    from app.training.supervisor import run_training
    from app.training.trainer import StopRequested

    folder = layout.run_dir(run.id)
    final = layout.final_dir(folder)
    if (final / layout.SPEC_NAME).is_file():
        summary = layout.read_spec(final)["summary"]
    else:
        write_inputs(session, run, folder)
        release(session)  # training takes minutes: hold no transaction meanwhile
        layout.heartbeat(folder)
        # A GGUF base model is converted here once, before one process per GPU would each try.
        model_folder(run.base_model)
        params = TrainingParams(**run.params)

        def on_step(step: int, total: int) -> None:
            try:
                progress(step, total)
            except JobCancelled:
                raise StopRequested() from None

        def on_metric(row: dict[str, Any]) -> None:
            with side_transaction(session) as side:  # others see it at once
                store_metrics(side, run.id, [row])

        try:
            summary = run_training(folder, params.processes, on_step, on_metric)
        except StopRequested:
            raise JobCancelled() from None
    store_metrics(session, run.id, layout.read_metrics(folder))
    progress(summary["steps"], summary["steps"], force=True)
    run.state = RunState.SUCCEEDED.value
    run.artifacts = {
        "final": str(final),
        "kind": "adapter" if run.method == "lora" else "model",
        "files": layout.artifact_files(folder),
        "summary": summary,
    }
    run.logs = layout.log_tail(folder)
    job = session.get(Job, run.job_id) if run.job_id is not None else None
    run.started_at = run.started_at or (job or run).started_at
    run.finished_at = utcnow()
    return {
        "steps": summary["steps"],
        "examples": summary["examples"],
        "train_loss": round(summary["train_loss"], 4),
    }


def store_metrics(session: Session, run_id: int, rows: list[dict[str, Any]]) -> None:
    """Upsert metrics rows on (run, step): storing them twice changes nothing."""
    values = [
        {"run_id": run_id, "step": int(r["step"])} | {f: r.get(f) for f in METRIC_FIELDS}
        for r in rows
    ]
    upsert_where(session, TrainingMetric.__table__, values, ("run_id", "step"), where=None)
