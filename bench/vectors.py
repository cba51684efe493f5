"""Real MiniLM vectors for the benchmarks: texts of the shared data sets, embedded once.

    python bench/vectors.py            # embed (minutes on 2 cores) and cache, then print counts

The texts are every distinct prompt (instruction and input, or a user's turn) of the records
under ../shared/data: AlpaGasus' Alpaca 9k and Dolly 3k, LIMA, the ShareGPT sample, the
Self-Instruct seeds and test set, IFEval, WizardLM, Vicuna and MT-Bench questions (14,760 texts,
read in place: nothing is copied into the repository). Answers are left out only for time:
embedding them too took over an hour on 2 shared cores. They are embedded with the bundled
all-MiniLM-L6-v2, as Sift embeds examples, and the unit vectors are cached in the system's
temporary folder (`sift-bench/minilm-prompts-<hash of the texts>/`, a file per 1,024 texts, so
that an interrupted run resumes).

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
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import orjson

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
CACHE = Path(tempfile.gettempdir()) / "sift-bench"
PART = 1024  # texts per cached file


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
    """Every distinct prompt of the shared data sets, in the order read."""
    seen: dict[str, None] = {}
    for prompt, _ in _records():
        if prompt.strip():
            seen.setdefault(prompt.strip(), None)
    return list(seen)


def real_vectors() -> np.ndarray:
    """The MiniLM unit vectors of real_texts() (float32), from the cache or embedded now."""
    texts = real_texts()
    digest = hashlib.sha256("\0".join(texts).encode("utf-8")).hexdigest()[:16]
    folder = CACHE / f"minilm-prompts-{digest}"
    folder.mkdir(parents=True, exist_ok=True)
    parts = []
    started = time.perf_counter()
    for start in range(0, len(texts), PART):
        path = folder / f"{start // PART:04d}.npy"
        if not path.is_file():
            from app.platform.vectors.models import load_embedder

            np.save(path, load_embedder(None).encode(texts[start : start + PART]))
            print(f"  embedded {min(start + PART, len(texts)):,} of {len(texts):,} texts "
                  f"({time.perf_counter() - started:.0f} s)", flush=True)  # fmt: skip
        parts.append(np.load(path))
    return np.concatenate(parts)


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
