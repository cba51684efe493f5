"""Job handlers of the evaluation domain."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.evaluation import ifeval
from app.evaluation.chunks import evaluate_chunk, plan_chunks, run_of
from app.evaluation.ifeval_job import evaluate_ifeval_chunk
from app.models import Job
from app.platform.jobs.progress import Progress
from app.platform.jobs.registry import chunked_job


@chunked_job("evaluate", queue="io")
class Evaluate:
    """Answers and judges (or checks, for IFEval) every prompt of a test set, a range of
    prompts per task."""

    def plan(self, session: Session, job: Job) -> tuple[int, list[dict[str, Any]]]:
        """Ranges of the prompts that have no settled verdict yet."""
        run = run_of(session, job)
        run.state = "running"
        return plan_chunks(session, run, job.params["chunk_size"])

    def run_chunk(
        self, session: Session, job: Job, params: dict[str, Any], progress: Progress
    ) -> dict[str, Any]:
        """Evaluate one range: judged in both orders, or checked by IFEval's rules."""
        run = run_of(session, job)
        if run.kind == ifeval.KIND:
            return evaluate_ifeval_chunk(session, job, run, params, progress)
        return evaluate_chunk(session, job, params, progress)
