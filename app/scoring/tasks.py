"""Job handlers of the scoring domain."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.models import Job
from app.platform.config import get_settings
from app.platform.jobs.progress import Progress
from app.platform.jobs.registry import chunked_job
from app.scoring.chunks import plan_chunks, score_chunk


@chunked_job("score", queue="io")
class ScoreDataset:
    """Scores every example of a dataset (or of a selection of it) that has no score yet, a
    chunk of hashes per task."""

    def plan(self, session: Session, job: Job) -> tuple[int, list[dict[str, Any]]]:
        """Ranges of unscored content hashes, `score_chunk_size` examples each."""
        assert job.dataset_id is not None
        size = get_settings().score_chunk_size
        selection = job.params.get("example_ids")  # a bulk "score these" names its examples
        return plan_chunks(session, job.dataset_id, job.params["scorer_id"], size, selection)

    def run_chunk(
        self, session: Session, job: Job, params: dict[str, Any], progress: Progress
    ) -> dict[str, Any]:
        """Score one range."""
        return score_chunk(session, job, params, progress)
