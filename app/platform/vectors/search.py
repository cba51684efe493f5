"""Searches over stored vectors: an example's nearest neighbours, and examples nearest to a
typed sentence, both served by the model's HNSW index."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Embedding, Example
from app.platform.errors import InvalidInput
from app.platform.vectors.index import cosine_distance, cosine_similarity, of_model, search_in_index
from app.platform.vectors.models import DEFAULT_MODEL, query_embedding
from app.platform.vectors.store import stored_dim


def _ranked(
    session: Session, query: Any, model: str, dim: int, vector: Any, k: int
) -> list[tuple[int, float]]:
    """(example id, cosine) of the k rows of `query` (a select of Example.id, not joined to
    embeddings yet; its own order is dropped) whose `model` vectors are nearest to `vector`,
    best first."""
    search_in_index(session)
    ranked = (
        query.order_by(None)
        .add_columns(cosine_similarity(vector))
        .join(Embedding, Embedding.content_hash == Example.content_hash)
        .where(of_model(model, dim))
        .order_by(cosine_distance(model, dim, vector))
        .limit(k)
    )
    rows = session.execute(ranked).all()
    # The index orders by half-precision distance (and iterative scans only roughly): the
    # exact cosine decides the order shown.
    return sorted(((int(r[0]), float(r[1])) for r in rows), key=lambda r: -r[1])


def nearest_examples(
    session: Session, example: Example, k: int, model: str = DEFAULT_MODEL
) -> list[tuple[int, float]] | str:
    """(id, cosine) of the k examples of the example's dataset nearest to it by `model`, from
    the model's HNSW index; or a sentence saying why there is nothing to search."""
    row = session.execute(
        select(Embedding.dim, Embedding.vector).where(
            Embedding.content_hash == example.content_hash, Embedding.model == model
        )
    ).first()
    if row is None:
        if stored_dim(session, model) is None:
            return f"no {model} embeddings yet: start an embedding job on the dataset page"
        return "this example has no embedding yet"
    query = select(Example.id).where(
        Example.dataset_id == example.dataset_id, Example.id != example.id
    )
    found = _ranked(session, query, model, row[0], row[1], k)
    return found or "no other embedded example"


def similar_to(
    session: Session, query: Any, text: str, model: str | None = None, k: int = 50
) -> list[tuple[int, float]]:
    """(id, cosine) of the k rows of `query` (a select of Example.id with its filters) nearest
    to the typed `text` by `model` (the bundled MiniLM by default), best first.

    Only a model that has vectors stored is loaded: a request cannot make the server load
    an arbitrary folder. InvalidInput, with a sentence to show, when there is none."""
    name = model or DEFAULT_MODEL
    if not text.strip():
        raise InvalidInput("similar_to: type a sentence to search by meaning", field="similar_to")
    dim = stored_dim(session, name)
    if dim is None:
        raise InvalidInput(
            f"no examples have {name} embeddings yet: start an embedding job on the dataset "
            "page (or `sift embed`) to search by meaning",
            field="model" if model else "similar_to",
        )
    return _ranked(session, query, name, dim, query_embedding(text, name), k)
