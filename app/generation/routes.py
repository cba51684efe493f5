"""JSON API for generation: estimate a run, start it, and read where an example came from."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter

from app.datasets.service import get_example
from app.generation import service
from app.generation.schemas import EstimateOut, GenerateIn, ProvenanceOut, VariantOut
from app.platform.db import DB
from app.platform.errors import NotFound
from app.platform.jobs.schemas import JobOut
from app.platform.security import ApiAnnotator, ApiLead
from app.platform.validation import Id, IdempotencyKey

router = APIRouter(prefix="/api/v1", tags=["generation"])


@router.post("/datasets/{name}/generate/estimate", response_model=EstimateOut)
def estimate(name: str, body: GenerateIn, session: DB, _: ApiLead) -> EstimateOut:
    """The calls a run would make and the most they can cost; nothing is sent."""
    return EstimateOut(**service.estimate(session, body.spec(name)).as_dict())


@router.post("/datasets/{name}/generate", response_model=JobOut, status_code=202)
def generate(
    name: str,
    body: GenerateIn,
    session: DB,
    user: ApiLead,
    idempotency_key: IdempotencyKey = None,
) -> JobOut:
    """Start a generation job from this dataset into `into` (created if missing)."""
    job = service.start_generation(
        session, body.spec(name), user=user, idempotency_key=idempotency_key
    )
    return JobOut.model_validate(job)


@router.get("/examples/{example_id}/provenance", response_model=ProvenanceOut)
def provenance(example_id: Id, session: DB, _: ApiAnnotator) -> ProvenanceOut:
    """Where a generated example came from (404 for an example that was not generated)."""
    get_example(session, example_id)
    found = service.provenance_for(session, [example_id]).get(example_id)
    if found is None:
        raise NotFound(f"example {example_id} was not generated")
    return ProvenanceOut(**asdict(found))


@router.get("/examples/{example_id}/variants", response_model=list[VariantOut])
def variants(example_id: Id, session: DB, _: ApiAnnotator) -> list[VariantOut]:
    """The Evol-Quality answers of the example's group, the original first."""
    get_example(session, example_id)
    return [VariantOut(**asdict(v)) for v in service.variants_of(session, example_id)]
