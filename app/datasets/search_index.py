"""The full-text column of a large import, filled after it by a job.

A trigger parses every inserted example's text into `examples.search_text` (migration 0025).
In an import of a large file that parsing, and the GIN index's insertion of every word, were
most of the time, on one core inside the import's one transaction (11,500 examples/s; 35,000 to
42,000/s without them). Such an import leaves the column NULL and queues a job that
fills it in chunks of short transactions, side by side on the workers. Until it has run, a text
search does not find those examples; the examples are there for everything else at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import func, literal_column, select, update
from sqlalchemy.orm import Session

from app.models import Dataset, Example, Job
from app.models.datasets import SEARCH_TEXT
from app.platform.config import get_settings
from app.platform.jobs.dispatch import create_job
from app.platform.jobs.progress import Progress

SEARCH_INDEX_KIND = "search-index"
CHUNK_SIZE = 5_000  # examples per task: well under a second of parsing, and as short a lock


def defer_search(session: Session, path: Path) -> bool:
    """Leave the full-text column of what this transaction imports from `path` to the job, when
    the file is large (below the setting's size, parsing takes a second or less and the examples
    are searchable the moment the import ends); whether it does."""
    threshold = get_settings().import_defer_search_mb * 2**20
    if not path.is_file() or path.stat().st_size < threshold:
        return False
    session.execute(select(func.set_config("sift.defer_search", "on", True)))
    return True


def start_search_index_job(session: Session, dataset: Dataset) -> Job:
    """Queue the job that fills the full-text column of the dataset's examples without one."""
    return create_job(session, SEARCH_INDEX_KIND, {}, queue="cpu", dataset_id=dataset.id)


def unsearchable_count(session: Session, dataset_id: int) -> int:
    """How many of the dataset's examples a text search cannot find yet."""
    query = select(func.count()).where(*_unsearched(dataset_id))
    return session.scalar(query) or 0


def plan_search_chunks(
    session: Session, dataset_id: int, size: int = CHUNK_SIZE
) -> tuple[int, list[dict[str, Any]]]:
    """The examples without a full-text column, as id ranges of `size` (counted in the
    database: a pool of millions is not read into this process)."""
    ids = select(
        Example.id, ((func.row_number().over(order_by=Example.id) - 1) // size).label("n")
    ).where(*_unsearched(dataset_id))
    numbered = ids.subquery()
    ranges = (
        select(func.min(numbered.c.id), func.max(numbered.c.id), func.count())
        .group_by(numbered.c.n)
        .order_by(numbered.c.n)
    )
    chunks = [{"lo": lo, "hi": hi, "size": size} for lo, hi, size in session.execute(ranges)]
    return sum(c["size"] for c in chunks), chunks


def fill_search_chunk(
    session: Session, job: Job, params: dict[str, Any], progress: Progress
) -> dict[str, Any]:
    """Parse the text of one id range's examples that still have no full-text column (none, when
    the chunk runs a second time)."""
    assert job.dataset_id is not None
    filled = session.execute(
        update(Example)
        .where(*_unsearched(job.dataset_id), Example.id.between(params["lo"], params["hi"]))
        .values(search_text=literal_column(SEARCH_TEXT))
        .execution_options(synchronize_session=False)
    )
    count: int = getattr(filled, "rowcount", 0)
    progress(params["size"], force=True)
    return {"indexed": count, "skipped": params["size"] - count}


def _unsearched(dataset_id: int) -> tuple[Any, ...]:
    return Example.dataset_id == dataset_id, Example.search_text.is_(None)
