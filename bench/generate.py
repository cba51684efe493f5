"""Benchmark: Self-Instruct's ROUGE-L novelty check, 5,000 new instructions against a pool of 50,000.

The original code (Self-Instruct, Alpaca) scores every new instruction against every instruction
in the pool with `rouge_score`; that loop is the bottleneck of generation. Sift's `NoveltyIndex`
bounds the LCS by the token overlap, counted for the whole pool at once from an inverted index,
and computes the exact (bit-parallel) LCS only where the bound could pass 0.7.

    python bench/generate.py                     # 50,000 + 5,000, reference on 40 candidates
    python bench/generate.py --sample 200        # a larger reference sample

- Data: real instructions (the 9,229 of ../shared/data/alpagasus/random_9k.json, the 175 seed
  tasks, Dolly 3k from AlpaGasus, LIMA's prompts) and, beyond them, new instructions spliced from
  the first half of one real instruction and the second half of another. The candidates are a
  third near-duplicates of pool entries (words dropped, swapped or replaced) and two thirds new
  splices, processed as Self-Instruct does: one by one, each admitted candidate joining the pool.
- Sift: every candidate through `NoveltyIndex.admit`.
- Reference: the plain pairwise loop, `rouge_scorer._score_lcs(new, old)` against every pool
  entry (tokenised once, as Alpaca does), timed on an even sample of the candidates against the
  pool as it stood at each one, and extrapolated to all of them. Its decisions on the sample must
  be Sift's. The exit status is 1 when a decision differs.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import json
import random
import time

from rouge_score import rouge_scorer

from app.generation.rouge import NoveltyIndex
from bench.common import DATA, peak_rss, reset_peak_rss

SHARED = DATA.parent.parent
THRESHOLD = 0.7


def real_instructions() -> list[str]:
    """Every distinct real instruction the shared data holds."""
    found: list[str] = []
    for name in ("alpagasus/random_9k.json", "alpagasus/dolly_3k.json"):
        path = SHARED / name
        if path.is_file():
            found += [r["instruction"] for r in json.loads(path.read_text("utf-8"))]
    seeds = SHARED / "alpaca" / "seed_tasks.jsonl"
    if seeds.is_file():
        found += [json.loads(line)["instruction"] for line in seeds.read_text("utf-8").splitlines()]
    lima = SHARED / "lima" / "lima.json"
    if lima.is_file():
        for record in json.loads(lima.read_text("utf-8")):
            turns = record.get("conversations") or []
            if turns:
                found.append(turns[0])
    return list(dict.fromkeys(text.strip() for text in found if text and text.strip()))


def splice(rng: random.Random, texts: list[str]) -> str:
    """A new instruction: the first half of one real instruction, the second half of another."""
    a, b = rng.choice(texts).split(), rng.choice(texts).split()
    return " ".join(a[: max(1, len(a) // 2)] + b[len(b) // 2 :])


def near_duplicate(rng: random.Random, text: str) -> str:
    """A copy of `text` with one to four words dropped, replaced or repeated."""
    words = text.split()
    for _ in range(rng.randrange(1, 5)):
        k = rng.randrange(len(words))
        action = rng.randrange(3)
        if action == 0 and len(words) > 2:
            del words[k]
        elif action == 1:
            words[k] = rng.choice(["detailed", "three", "short", "the", "simple", "new"])
        else:
            words.insert(k, rng.choice(words))
    return " ".join(words)


def build(pool_size: int, new: int, seed: int) -> tuple[list[str], list[str]]:
    """The starting pool and the candidates, in the order they arrive."""
    rng = random.Random(seed)
    real = real_instructions()
    pool = real[:pool_size]
    while len(pool) < pool_size:
        pool.append(splice(rng, real))
    candidates = [
        near_duplicate(rng, rng.choice(pool)) if i % 3 == 0 else splice(rng, real)
        for i in range(new)
    ]
    return pool, candidates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=int, default=50_000)
    parser.add_argument("--new", type=int, default=5_000)
    parser.add_argument("--sample", type=int, default=40, help="candidates the reference scores")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    pool, candidates = build(args.pool, args.new, args.seed)
    print(f"pool {len(pool):,} instructions, {len(candidates):,} candidates", flush=True)

    reset_peak_rss()
    started = time.perf_counter()
    index = NoveltyIndex(THRESHOLD)
    index.extend(pool)
    built = time.perf_counter() - started
    decisions = []
    started = time.perf_counter()
    for candidate in candidates:
        decisions.append(index.admit(candidate) is None)
    sift_s = time.perf_counter() - started
    kept = sum(decisions)
    print(
        f"Sift: index of the pool built in {built:.2f} s; {len(candidates):,} candidates checked "
        f"in {sift_s:.2f} s ({sift_s / len(candidates) * 1000:.2f} ms each), {kept:,} admitted; "
        f"peak RSS {peak_rss():.0f} MiB",
        flush=True,
    )

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    tokenize = scorer._tokenizer.tokenize
    step = max(1, len(candidates) // max(1, args.sample))
    sampled = list(range(0, len(candidates), step))[: args.sample]
    pool_tokens = [tokenize(text) for text in pool]
    admitted_before = [i for i, ok in enumerate(decisions) if ok]
    reference_s = 0.0
    mismatches = 0
    for i in sampled:
        # The pool as it stood when candidate i arrived: the start and every earlier admission.
        earlier = [tokenize(candidates[j]) for j in admitted_before if j < i]
        tokens = tokenize(candidates[i])
        started = time.perf_counter()
        # As the original code: every score, then the largest against the threshold.
        scores = [
            rouge_scorer._score_lcs(tokens, other).fmeasure for other in pool_tokens + earlier
        ]
        novel = max(scores) <= THRESHOLD
        reference_s += time.perf_counter() - started
        mismatches += novel != decisions[i]
    per_candidate = reference_s / len(sampled)
    extrapolated = per_candidate * len(candidates)
    print(
        f"reference (pairwise rouge-score loop, one process): {len(sampled)} candidates in "
        f"{reference_s:.1f} s ({per_candidate * 1000:.0f} ms each), extrapolated to "
        f"{len(candidates):,}: {extrapolated:,.0f} s"
    )
    print(f"ratio reference / Sift: {extrapolated / sift_s:,.0f}x")
    print(f"decisions identical on the {len(sampled)} sampled candidates: {mismatches == 0}")
    return 0 if mismatches == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
