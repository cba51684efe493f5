"""Generation jobs: what a lead asks for, what it will cost, starting it; and reading back where a
generated example came from."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.datasets.service import get_dataset, get_or_create_dataset

# The generation domain's public API is this module: what it defines, and what it re-exports
# from the domain's other modules (imported `as` their own name below).
from app.generation.estimate import Estimate as Estimate
from app.generation.estimate import estimate as estimate
from app.generation.inputs import last_id
from app.generation.inputs import seed_dataset as seed_dataset
from app.generation.inputs import source_tasks as source_tasks
from app.generation.provenance import ProvenanceView as ProvenanceView
from app.generation.provenance import Variant as Variant
from app.generation.provenance import provenance_for as provenance_for
from app.generation.provenance import variants_of as variants_of
from app.generation.spec import DEFAULT_ENDPOINT as DEFAULT_ENDPOINT
from app.generation.spec import DEFAULT_N
from app.generation.spec import DEFAULT_ROUNDS as DEFAULT_ROUNDS
from app.generation.spec import GENERATE_KIND as GENERATE_KIND
from app.generation.spec import METHODS as METHODS
from app.generation.spec import GenerationSpec as GenerationSpec
from app.models import Job, User
from app.platform.jobs.dispatch import create_job
from app.platform.llm.endpoints import get_endpoint, require_priced

# A run that keeps too little stops after this many times the estimated calls.
MAX_CALLS_FACTOR = 5


def start_generation(
    session: Session,
    spec: GenerationSpec,
    *,
    user: User | None = None,
    idempotency_key: str | None = None,
) -> Job:
    """Queue a generation job; the `into` dataset is created if missing."""
    source = get_dataset(session, spec.source)
    spec.check()
    endpoint = get_endpoint(spec.endpoint)
    if spec.budget_usd is not None:
        require_priced(spec.endpoint, endpoint)
    into = get_or_create_dataset(session, spec.into, user)
    planned = estimate(session, spec)
    params: dict[str, Any] = {
        "method": spec.method,
        "source": source.name,
        "source_id": source.id,
        # Examples added to the source later (perhaps by this very job) are not inputs.
        "up_to_id": last_id(session, source),
        "into": into.name,
        "n": spec.n,
        "rounds": spec.round_count,
        "endpoint": spec.endpoint,
        "model": endpoint.model,
        "variant": spec.variant,
        "seed": spec.seed,
        "operations": spec.operations or list(spec.allowed_operations()),
        "estimated_calls": planned.calls,
        "max_calls": max(20, planned.calls * MAX_CALLS_FACTOR),
    }
    if spec.batch:
        params["batch"] = True
    total = (spec.n or DEFAULT_N) if spec.method == "self-instruct" else None
    job = create_job(
        session,
        GENERATE_KIND,
        params,
        queue="io",
        user=user,
        dataset_id=into.id,
        total=total,
        idempotency_key=idempotency_key,
    )
    job.budget_usd = spec.budget_usd
    return job
