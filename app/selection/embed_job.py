"""The embed job: one vector per example of a dataset from a chosen model, in chunks of hash
ranges, resumable (an example that has a vector is skipped). The models, the store and the
HNSW index it writes to are platform infrastructure (`app.platform.vectors`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from app.models import Dataset, Embedding, Example, Job, User
from app.platform.jobs.chunked import key_ranges
from app.platform.jobs.dispatch import create_job
from app.platform.jobs.progress import Progress
from app.platform.vectors.index import ensure_vector_index, vector_index_name
from app.platform.vectors.models import BATCH_SIZE, load_embedder, model_dim, resolve_model
from app.platform.vectors.store import store_embeddings, stored_dim
from app.scoring.service import ExampleText

EMBED_KIND = "embed"
CHUNK_SIZE = 1000  # examples per task: a few seconds of work on a GPU, under a minute on a CPU


def embedding_text(example_text: ExampleText) -> str:
    """The whole conversation as one text, every user and assistant turn in order."""
    turns = example_text.turns
    if not turns:
        user = (
            f"{example_text.instruction}\n\n{example_text.input}"
            if example_text.input
            else example_text.instruction
        )
        return f"USER: {user} ASSISTANT: {example_text.output}"
    return "\n".join(f"USER: {turn.user} ASSISTANT: {turn.assistant}" for turn in turns)


def embedding_queue() -> str:
    """The gpu queue where this machine has a GPU, cpu otherwise."""
    try:
        import torch
    except ImportError:
        return "cpu"
    return "gpu" if torch.cuda.is_available() else "cpu"


def start_embed_job(
    session: Session,
    dataset: Dataset,
    model: str | None = None,
    *,
    user: User | None = None,
    idempotency_key: str | None = None,
) -> Job:
    """Queue a job that embeds every example of the dataset with no vector from `model` yet."""
    name, _, _ = resolve_model(model)
    return create_job(
        session,
        EMBED_KIND,
        {"model": name},
        queue=embedding_queue(),
        user=user,
        dataset_id=dataset.id,
        idempotency_key=idempotency_key,
    )


# ---------------------------------------------------------------- the job's work


def _unembedded(dataset_id: int, model: str) -> Any:
    return select(Example.content_hash).where(
        Example.dataset_id == dataset_id,
        ~exists().where(Embedding.content_hash == Example.content_hash, Embedding.model == model),
    )


def plan_embed_chunks(
    session: Session, dataset_id: int, model: str, size: int = CHUNK_SIZE
) -> tuple[int, list[dict[str, Any]]]:
    """The dataset's size and hash ranges of `size` examples that have no vector yet."""
    total = session.scalar(select(func.count()).where(Example.dataset_id == dataset_id)) or 0
    if session.scalar(select(func.to_regclass(vector_index_name(model)))) is None:
        ensure_vector_index(session, model, stored_dim(session, model) or model_dim(model))
    hashes = session.scalars(_unembedded(dataset_id, model).order_by(Example.content_hash)).all()
    return total, key_ranges(hashes, size)


def embed_chunk(
    session: Session, job: Job, params: dict[str, Any], progress: Progress
) -> dict[str, Any]:
    """Embed the examples of one hash range that still have no vector from the job's model."""
    assert job.dataset_id is not None
    model = job.params["model"]
    query = (
        _unembedded(job.dataset_id, model)
        .add_columns(Example.messages, Example.instruction, Example.input, Example.output)
        .where(Example.content_hash >= params["lo"], Example.content_hash <= params["hi"])
        .order_by(Example.content_hash)
    )
    rows = session.execute(query).all()
    skipped = params["size"] - len(rows)
    if not rows:
        progress(params["size"], force=True)
        return {"embedded": 0, "skipped": skipped}
    embedder = load_embedder(model)
    written = 0
    for start in range(0, len(rows), BATCH_SIZE * 4):
        batch = rows[start : start + BATCH_SIZE * 4]
        texts = [embedding_text(ExampleText.of(r[1], r[2], r[3], r[4])) for r in batch]
        vectors = embedder.encode(texts)
        store_embeddings(session, [r[0] for r in batch], embedder.name, vectors)
        written += len(batch)
        progress(skipped + written)
    progress(params["size"], force=True)
    return {"embedded": written, "skipped": skipped}


def missing_embeddings(session: Session, dataset_id: int, model: str) -> int:
    """How many of the dataset's examples have no vector from `model`."""
    return (
        session.scalar(select(func.count()).select_from(_unembedded(dataset_id, model).subquery()))
        or 0
    )
