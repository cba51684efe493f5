"""Embeddings: the bundled model offline, custom models by path, and resumable embed jobs."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine, func, select

from app.datasets.service import create_dataset
from app.entrypoints.domains import load_every_job_kind
from app.models import Dataset, Embedding, Job, JobState
from app.platform.db import transaction
from app.platform.errors import InvalidInput
from app.platform.jobs.dispatch import run_jobs_here
from app.platform.jobs.runner import execute_job
from app.platform.vectors import models as vector_models
from app.platform.vectors.models import (
    DEFAULT_MODEL,
    Embedder,
    bundled_model_path,
    load_embedder,
    resolve_model,
)
from app.platform.vectors.store import load_embeddings
from app.scoring.service import ExampleText
from app.selection import embed_job
from app.selection.embed_job import embedding_text, start_embed_job
from tests.factories import make_example
from tests.scoring.tiny_llama import build_tiny_llama

load_every_job_kind()


def _is_local(address: Any) -> bool:
    if not isinstance(address, tuple):
        return True  # a Unix socket
    try:
        return ipaddress.ip_address(address[0]).is_loopback
    except ValueError:
        return address[0] == "localhost"


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every connection to a non-loopback address fails, and is recorded."""
    attempts: list[Any] = []
    connect = socket.socket.connect

    def guarded(sock: socket.socket, address: Any) -> Any:
        if not _is_local(address):
            attempts.append(address)
            raise OSError(f"the network is off in this test ({address})")
        return connect(sock, address)

    def no_dns(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args[0] if args else kwargs)
        raise socket.gaierror("the network is off in this test")

    monkeypatch.setattr(socket.socket, "connect", guarded)
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: guarded(socket.socket(), a[0]))
    real_getaddrinfo = socket.getaddrinfo
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda host, *a, **k: (
            real_getaddrinfo(host, *a, **k)
            if host in (None, "localhost", "127.0.0.1", "::1")
            else no_dns(host)
        ),
    )
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    return attempts


def test_the_bundled_model_loads_and_encodes_with_the_network_off(no_network: list[Any]) -> None:
    vector_models._load.cache_clear()
    embedder = load_embedder(None)
    vectors = embedder.encode(
        [
            "How do I sort a list in Python?",
            "how do i SORT a list in python?",
            "Write a poem about the autumn sea.",
        ]
    )
    assert embedder.name == DEFAULT_MODEL
    assert vectors.dtype == np.float32 and vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # MiniLM is uncased: a change of case is the same text to it.
    assert float(vectors[0] @ vectors[1]) > 0.99
    assert float(vectors[0] @ vectors[2]) < 0.5
    assert no_network == []


def test_models_are_local_folders_and_nothing_else(tmp_path: Path) -> None:
    assert resolve_model(None)[0] == DEFAULT_MODEL
    assert resolve_model(DEFAULT_MODEL)[1] == bundled_model_path()
    name, _, kind = resolve_model(str(bundled_model_path()))
    assert (name, kind) == (str(bundled_model_path().resolve()), "sentence-transformers")
    for bad in ["sentence-transformers/all-mpnet-base-v2", str(tmp_path / "absent"), str(tmp_path)]:
        with pytest.raises(InvalidInput) as raised:
            resolve_model(bad)
        assert raised.value.detail["field"] == "model"
    (tmp_path / "config.json").write_text('{"architectures": ["BertModel"]}')
    with pytest.raises(InvalidInput):
        resolve_model(str(tmp_path))


def test_a_causal_lm_embeds_the_last_real_token_whatever_the_padding(
    tmp_path: Path, no_network: list[Any]
) -> None:
    folder = build_tiny_llama(tmp_path / "llama")
    name, _, kind = resolve_model(str(folder))
    assert (name, kind) == (str(folder.resolve()), "causal-lm")
    embedder = load_embedder(str(folder))
    texts = [
        "USER: What is 12 + 34? ASSISTANT: It is 46.",
        "USER: Write a haiku about the sea. ASSISTANT: Waves fold into foam, the gulls cry "
        "over the grey. Waves fold into foam.",
        "USER: sort ASSISTANT: sorted",
    ]
    together = embedder.encode(texts)
    alone = np.concatenate([embedder.encode([t]) for t in texts])
    assert together.shape == (3, 32)
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    # Right padding in a batch must not change a text's vector.
    assert np.allclose(together, alone, atol=1e-5)
    assert no_network == []


def test_embedding_text_holds_every_turn() -> None:
    conversation = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Sort 3 1 2"},
        {"role": "assistant", "content": "1 2 3"},
    ]
    text = embedding_text(ExampleText.of(conversation))
    assert text == "USER: Hi ASSISTANT: Hello\nUSER: Sort 3 1 2 ASSISTANT: 1 2 3"
    single = embedding_text(ExampleText.of([], "Add", "2 and 3", "5"))
    assert single == "USER: Add\n\n2 and 3 ASSISTANT: 5"


class CountingEmbedder:
    """The real embedder, counting the texts it is asked to encode."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.encoded = 0

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Encode and count."""
        self.encoded += len(texts)
        return self.inner.encode(texts)


def _run_embed(dataset: str = "pool", chunk_size: int = 2) -> Job:
    with transaction() as session:
        target = session.scalar(select(Dataset).where(Dataset.name == dataset))
        assert target is not None
        run_jobs_here(session)
        job = start_embed_job(session, target)
        job.params = {**job.params, "chunk_size": chunk_size}
        job_id = job.id
    execute_job(job_id, inline=True)
    with transaction() as session:
        done = session.get(Job, job_id)
        assert done is not None
        session.expunge(done)
        return done


def test_the_embed_job_stores_one_vector_per_content_and_skips_what_is_stored(
    committed: Engine, monkeypatch: pytest.MonkeyPatch, no_network: list[Any]
) -> None:
    counter = CountingEmbedder(load_embedder(None))
    monkeypatch.setattr(embed_job, "load_embedder", lambda model: counter)
    with transaction() as session:
        dataset = create_dataset(session, "pool")
        hashes = [make_example(session, dataset, i).content_hash for i in range(5)]

    first = _run_embed()
    assert first.state == JobState.SUCCEEDED.value, first.error
    assert first.queue in ("cpu", "gpu")
    assert first.counts["embedded"] == 5 and first.done == first.total == 5
    assert counter.encoded == 5
    with transaction() as session:
        rows = session.scalar(select(func.count()).select_from(Embedding))
        stored = load_embeddings(session, hashes, DEFAULT_MODEL)
        assert rows == 5 and set(stored) == set(hashes)
        assert all(v.shape == (384,) and abs(float(v @ v) - 1) < 1e-5 for v in stored.values())

    second = _run_embed()
    assert second.state == JobState.SUCCEEDED.value
    assert counter.encoded == 5  # nothing computed again
    assert second.counts == {"already_done": 5}  # said, not "skipped 0" (issue 13)

    with transaction() as session:
        pool = session.scalar(select(Dataset).where(Dataset.name == "pool"))
        assert pool is not None
        make_example(session, pool, 99)
    third = _run_embed()
    assert third.counts["embedded"] == 1 and counter.encoded == 6
    assert third.counts["already_done"] == 5
    with transaction() as session:
        assert session.scalar(select(func.count()).select_from(Embedding)) == 6
    assert no_network == []
