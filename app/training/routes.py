"""JSON API for training runs under /api/v1/training/runs."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Response
from fastapi.responses import FileResponse

from app.platform.db import DB
from app.platform.security import ApiAnnotator, ApiLead
from app.platform.validation import Id, IdempotencyKey
from app.training import layout, service
from app.training.presets import build_params
from app.training.schemas import ArtifactFile, RunCreate, RunOut

router = APIRouter(prefix="/api/v1/training/runs", tags=["training"])


@router.post("", response_model=RunOut, status_code=201)
def create_run(
    body: RunCreate,
    session: DB,
    user: ApiLead,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> RunOut:
    """Start a fine-tune run on a snapshot; the same Idempotency-Key (or, without one, the same
    snapshot, model and config) gives the existing run back with 200."""
    params = build_params(body.preset, **body.overrides())
    run, created = service.create_run(
        session,
        body.snapshot_id,
        body.base_model,
        params,
        user=user,
        idempotency_key=f"api:{idempotency_key}" if idempotency_key else None,
    )
    if not created:
        response.status_code = 200
    return RunOut.model_validate(service.describe(session, run))


@router.get("", response_model=list[RunOut])
def list_runs(session: DB, user: ApiAnnotator) -> list[RunOut]:
    """The newest runs first, with their live state and step (no server paths for annotators)."""
    views = service.describe_runs(session, service.list_runs(session))
    return [RunOut.model_validate(service.shown_to(view, user)) for view in views]


@router.get("/{run_id}", response_model=RunOut)
def get_run(run_id: Id, session: DB, user: ApiAnnotator) -> RunOut:
    """One run with its metrics by step and the end of its log (leads only: it names paths)."""
    run = service.get_run(session, run_id)
    return RunOut.model_validate(service.shown_to(service.describe(session, run, full=True), user))


@router.post("/{run_id}/cancel", response_model=RunOut)
def cancel_run(run_id: Id, session: DB, _: ApiLead) -> RunOut:
    """Stop a queued or running run; it checkpoints first, so it can resume."""
    run = service.get_run(session, run_id)
    return RunOut.model_validate(service.describe(session, service.cancel_run(session, run)))


@router.post("/{run_id}/resume", response_model=RunOut)
def resume_run(run_id: Id, session: DB, _: ApiLead) -> RunOut:
    """Queue a failed, cancelled or stalled run again, from its last checkpoint."""
    run = service.resume_run(session, service.get_run(session, run_id))
    return RunOut.model_validate(service.describe(session, run))


@router.get("/{run_id}/artifacts", response_model=list[ArtifactFile])
def list_artifacts(run_id: Id, session: DB, _: ApiLead) -> list[ArtifactFile]:
    """The files of the run's final artifact (adapter or model, tokenizer, sift_run.json)."""
    run = service.get_run(session, run_id)
    return [
        ArtifactFile(**f, url=f"{router.prefix}/{run.id}/artifacts/{quote(f['path'])}")
        for f in layout.artifact_files(layout.run_dir(run.id))
    ]


@router.get("/{run_id}/artifacts/{path:path}", response_class=FileResponse)
def download_artifact(run_id: Id, path: str, session: DB, _: ApiLead) -> FileResponse:
    """One file of the run's final artifact."""
    file = service.artifact_path(service.get_run(session, run_id), path)
    return FileResponse(file, filename=file.name)
