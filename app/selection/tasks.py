"""Job handlers of the selection domain: embedding a dataset and finding its near-duplicates."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.models import Job
from app.platform.jobs.progress import Progress
from app.platform.jobs.registry import chunked_job, job_handler
from app.selection.dedup import DEDUP_KIND, run_dedup
from app.selection.embed_job import EMBED_KIND, embed_chunk, plan_embed_chunks


@chunked_job(EMBED_KIND, queue="cpu")
class EmbedDataset:
    """Embeds every example of a dataset with no vector from the model yet, a hash range per task."""

    def plan(self, session: Session, job: Job) -> tuple[int, list[dict[str, Any]]]:
        """Ranges of content hashes that have no vector from the job's model."""
        assert job.dataset_id is not None
        size = int(job.params.get("chunk_size") or 0) or None
        if size is None:
            return plan_embed_chunks(session, job.dataset_id, job.params["model"])
        return plan_embed_chunks(session, job.dataset_id, job.params["model"], size)

    def run_chunk(
        self, session: Session, job: Job, params: dict[str, Any], progress: Progress
    ) -> dict[str, Any]:
        """Embed one range."""
        return embed_chunk(session, job, params, progress)


@job_handler(DEDUP_KIND, queue="cpu")
def find_duplicates(session: Session, job: Job, progress: Progress) -> dict[str, Any]:
    """Replace the dataset's clusters of the job's method, in the job's one transaction."""
    counts = run_dedup(session, job)
    progress(counts["examples"], counts["examples"], force=True)
    return counts
