"""JSON API for embedding jobs and near-duplicate clusters."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.datasets.service import get_dataset
from app.platform.db import DB
from app.platform.jobs.schemas import JobOut
from app.platform.security import ApiAnnotator, ApiLead
from app.platform.validation import IdempotencyKey
from app.selection import dedup, embed_job
from app.selection.schemas import ClusterOut, ClusterPage, DedupStart, EmbedStart

router = APIRouter(prefix="/api/v1", tags=["selection"])


@router.post("/datasets/{name}/embeddings", response_model=JobOut, status_code=202)
def start_embedding(
    name: str,
    body: EmbedStart,
    session: DB,
    user: ApiLead,
    idempotency_key: IdempotencyKey = None,
) -> JobOut:
    """Embed every example of the dataset that has no vector from the model yet."""
    job = embed_job.start_embed_job(
        session, get_dataset(session, name), body.model, user=user, idempotency_key=idempotency_key
    )
    return JobOut.model_validate(job)


@router.post("/datasets/{name}/duplicates", response_model=JobOut, status_code=202)
def start_dedup(
    name: str,
    body: DedupStart,
    session: DB,
    user: ApiLead,
    idempotency_key: IdempotencyKey = None,
) -> JobOut:
    """Find the dataset's near-duplicates by one method, replacing that method's clusters."""
    job = dedup.start_dedup_job(
        session,
        get_dataset(session, name),
        body.method,
        threshold=body.threshold,
        model=body.model,
        prefer=body.prefer,
        user=user,
        idempotency_key=idempotency_key,
    )
    return JobOut.model_validate(job)


@router.get("/datasets/{name}/duplicates", response_model=ClusterPage)
def duplicate_clusters(
    name: str,
    session: DB,
    _: ApiAnnotator,
    method: Annotated[str | None, Query(pattern="^(exact|minhash|embedding)$")] = None,
    after: Annotated[int | None, Query(ge=0)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> ClusterPage:
    """The dataset's duplicate clusters with their members and representative, by cluster id."""
    clusters = dedup.list_clusters(session, get_dataset(session, name), method, limit, after)
    return ClusterPage(
        clusters=[ClusterOut.model_validate(c) for c in clusters],
        next_after=clusters[-1].id if len(clusters) == limit else None,
    )
