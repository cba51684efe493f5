"""Real MiniLM vectors for the benchmarks: texts of the shared data sets, embedded once.

    python bench/vectors.py            # embed (minutes on 2 cores) and cache, then print counts

The texts are every distinct prompt, answer and conversation turn of the records under
../shared/data (Alpaca, AlpaGasus' Dolly, LIMA, ShareGPT, the Self-Instruct seeds and test
sets, IFEval, WizardLM, Vicuna and MT-Bench questions), and every sentence of the answers of
at least five words, read in place (nothing is copied into the repository). They are embedded
with the bundled all-MiniLM-L6-v2, as Sift embeds examples, and the unit vectors are cached in
the system's temporary folder (`sift-bench/minilm-real-<hash>.npy`, the hash of the texts).

`pool_vectors(n)` makes a pool of `n` unit vectors from them: every real vector once, and then
mixtures `normalise(t * a + (1 - t) * b)` of a real vector `a` with another real vector `b`,
`t` uniform in [0.55, 0.95] (mostly `a`, with some of `b` mixed in: like a variant of a real
text that borrows from another), shuffled with a fixed seed.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import hashlib
import re
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import orjson

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
CACHE = Path(tempfile.gettempdir()) / "sift-bench"
SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


def _json(name: str) -> Any:
    return orjson.loads((SHARED / name).read_bytes())


def _jsonl(name: str) -> list[Any]:
    return [orjson.loads(line) for line in (SHARED / name).read_bytes().splitlines() if line]


def _prompt(instruction: str, given: str) -> str:
    return f"{instruction}\n\n{given}" if given else instruction


def _records() -> Iterator[tuple[str, str]]:
    """(prompt, answer) pairs of every data set; an empty answer where there is none."""
    for name in ("alpagasus/random_9k.json", "alpagasus/dolly_3k.json"):
        for r in _json(name):
            yield _prompt(r["instruction"], r.get("input") or ""), r["output"]
    for r in _json("lima/lima.json"):
        yield from ((user, assistant) for user, assistant in r.get("history") or [])
        yield r["instruction"], r["output"]
    for r in _json("sharegpt_sample/dummy_conversation.json"):
        turns = [t["value"] for t in r["conversations"]]
        yield from zip(turns[::2], turns[1::2], strict=False)
    for r in _jsonl("alpaca/seed_tasks.jsonl") + _jsonl("alpagasus/sinstruct_test_set.jsonl"):
        for instance in r["instances"]:
            yield _prompt(r["instruction"], instance["input"]), instance["output"]
    for r in _jsonl("ifeval/input_data.jsonl"):
        yield r["prompt"], ""
    for r in _jsonl("alpagasus/wizardlm_test_set.jsonl"):
        yield r["Instruction"], ""
    for name in ("vicuna_bench/question.jsonl", "mt_bench/question.jsonl"):
        for r in _jsonl(name):
            for turn in r["turns"]:
                yield turn, ""


def real_texts() -> list[str]:
    """Every distinct prompt, answer and answer sentence (of five words or more), in order."""
    seen: dict[str, None] = {}
    for prompt, answer in _records():
        for text in (prompt, answer, *SENTENCE.split(answer)):
            text = text.strip()
            if len(text.split()) >= 5 or (text and text in (prompt, answer)):
                seen.setdefault(text, None)
    return list(seen)


def real_vectors() -> np.ndarray:
    """The MiniLM unit vectors of real_texts(), from the cache or embedded now (float32)."""
    texts = real_texts()
    digest = hashlib.sha256("\0".join(texts).encode("utf-8")).hexdigest()[:16]
    path = CACHE / f"minilm-real-{digest}.npy"
    if path.is_file():
        return np.load(path)
    from app.selection.embeddings import load_embedder

    embedder = load_embedder(None)
    started = time.perf_counter()
    # Sorted by length, so that each batch pads little; put back in order afterwards.
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    vectors = np.empty((len(texts), embedder.dim), dtype=np.float32)
    step = 4096
    for start in range(0, len(order), step):
        chosen = order[start : start + step]
        vectors[chosen] = embedder.encode([texts[i] for i in chosen])
        done = start + len(chosen)
        print(f"  embedded {done:,} of {len(texts):,} texts "
              f"({time.perf_counter() - started:.0f} s)", flush=True)  # fmt: skip
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def pool_vectors(n: int, seed: int = 0) -> np.ndarray:
    """`n` distinct unit vectors (float32): every real vector, then mixtures of two, shuffled."""
    real = real_vectors()
    rng = np.random.default_rng(seed)
    if n <= len(real):
        return real[rng.permutation(len(real))[:n]]
    extra = n - len(real)
    first = rng.integers(0, len(real), extra)
    second = rng.integers(0, len(real), extra)
    t = rng.uniform(0.55, 0.95, extra).astype(np.float32)[:, None]
    mixed = t * real[first] + (1 - t) * real[second]
    mixed /= np.linalg.norm(mixed, axis=1, keepdims=True)
    pool = np.concatenate([real, mixed])
    return pool[rng.permutation(n)]


if __name__ == "__main__":
    vectors = real_vectors()
    print(f"{len(vectors):,} real vectors of {vectors.shape[1]} dimensions")
