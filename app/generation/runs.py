"""One generation job: read its inputs, run the method against the endpoint, write the results.

The whole run is one task and one transaction. When the budget runs out, what was paid for is
written and the job pauses; resumed, it runs again from the start, every earlier call answered
by the response cache, and writes only what is new.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from app.generation import methods
from app.generation.inputs import source_tasks
from app.generation.methods import Outcome, Parent, SelfInstructSpec
from app.generation.prompts import Task
from app.generation.spec import DEFAULT_N
from app.generation.store import store_generated
from app.models import Dataset, Example, Job, Provenance
from app.platform.aio import run_async
from app.platform.errors import NotFound
from app.platform.jobs.progress import JobPaused, Progress
from app.platform.llm.client import LLMClient
from app.platform.llm.endpoints import get_endpoint


def _existing_instructions(session: Session, into_id: int, job_id: int) -> list[str]:
    """The instructions already in the target dataset, except those this job wrote before (a
    resumed run makes them again, and must not find them in its way)."""
    own = exists().where(Provenance.example_id == Example.id, Provenance.job_id == job_id)
    rows = session.execute(
        select(Example.instruction, Example.messages).where(Example.dataset_id == into_id, ~own)
    )
    found = []
    for instruction, messages in rows:
        if instruction is None:
            instruction = next((m["content"] for m in messages if m["role"] == "user"), "")
        found.append(instruction)
    return found


def _into(session: Session, job: Job) -> Dataset:
    dataset = session.get(Dataset, job.dataset_id) if job.dataset_id is not None else None
    if dataset is None:
        raise NotFound(f"the dataset job {job.id} writes into no longer exists")
    if session.get(Dataset, job.params["source_id"]) is None:
        raise NotFound(f"the dataset job {job.id} reads ({job.params['source']}) no longer exists")
    return dataset


async def _run(session: Session, job: Job, into: Dataset, progress: Progress) -> Outcome:
    params = job.params
    name = params["endpoint"]
    rows = source_tasks(
        session,
        params["source_id"],
        params["up_to_id"],
        None if params["method"] == "self-instruct" else params["n"],
    )
    async with LLMClient(name, get_endpoint(name), session, job_id=job.id) as client:
        if params["method"] == "self-instruct":
            spec = SelfInstructSpec(
                n=params["n"] or DEFAULT_N,
                variant=params["variant"],
                seed=params["seed"],
                max_calls=params["max_calls"],
            )
            seeds = [Task(instruction, given, output) for _, instruction, given, output in rows]
            progress(0, spec.n)
            existing = _existing_instructions(session, into.id, job.id)
            return await methods.self_instruct(client, spec, seeds, existing, progress)
        parents = [Parent(*row) for row in rows]
        progress(0, len(parents) * params["rounds"])
        return await methods.evolve(
            client,
            params["method"],
            parents,
            params["rounds"],
            params["seed"],
            params["operations"],
            progress,
        )


def run_generation(session: Session, job: Job, progress: Progress) -> dict[str, Any]:
    """Do the job's generation and write it; raises JobPaused (after writing) on the budget."""
    into = _into(session, job)
    outcome = run_async(_run(session, job, into, progress))
    counts = outcome.counts() | {"new": store_generated(session, job, into.id, outcome.items)}
    progress(progress.done, force=True)
    if outcome.paused:
        raise JobPaused(counts)
    return counts
