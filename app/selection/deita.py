"""Deita's score-first, diversity-aware selection: an exact blocked selector and its reference.

The rule (DESIGN.md, "Deita selection"): walk the examples best score first and keep one when its
cosine similarity to every example already kept is <= the threshold, until the budget.

`reference_select` is the one-at-a-time loop. `deita_select` gives exactly the same rows in the same
order, but compares a whole block of candidates with the kept set in one matrix product, then
settles the dependencies inside the block (a candidate must also be unlike the earlier candidates
of its block that were kept), which only needs the few pairs of the block above the threshold.

Similarities are float32 dot products, as in Deita. Two products of different shapes may round
the same pair differently in the last bit, so a similarity within `ROUNDING_BAND` of the
threshold is decided again from the exactly rounded dot product of the float32 vectors: both
selectors then take the same decision for every pair, whatever the BLAS kernel.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from app.platform.errors import InvalidInput

# Far wider than the float32 error of a dot product of unit vectors (about 1e-6 at 4,096 dims,
# 2.4e-4 in the very worst case), so a pair outside the band falls on the same side of the
# threshold in every float32 computation; pairs inside it are rare and re-decided exactly.
ROUNDING_BAND = 1e-3
# Block sizes when the caller gives none: large enough for efficient matrix products, small
# enough that the (block x kept) similarity matrix stays near 64 MiB.
MIN_BLOCK, MAX_BLOCK, MAX_SIMILARITIES = 256, 4096, 1 << 24


def score_order(scores: Sequence[float] | np.ndarray) -> np.ndarray:
    """Indices that sort the scores highest first; ties keep pool order."""
    values = np.asarray(scores, dtype=np.float64)
    if values.ndim != 1:
        raise InvalidInput("scores must be a flat list of numbers", field="scores")
    if np.isnan(values).any():
        raise InvalidInput("scores must not contain NaN", field="scores")
    return np.argsort(-values, kind="stable").astype(np.int64)


def reference_select(embeddings: np.ndarray, budget: int, threshold: float = 0.9) -> list[int]:
    """The one-at-a-time greedy loop: each candidate against all kept rows in one product."""
    vectors = _checked(embeddings, budget, threshold)
    n, d = vectors.shape
    target = min(budget, n)
    kept = np.empty((target, d), dtype=np.float32)
    chosen: list[int] = []
    for row in range(n):
        if len(chosen) == target:
            break
        candidate = vectors[row]
        if chosen:
            similarities = kept[: len(chosen)] @ candidate
            rival = _too_similar(similarities[None, :], candidate[None, :], kept, threshold)
            if rival[0]:
                continue
        kept[len(chosen)] = candidate
        chosen.append(row)
    return chosen


def deita_select(
    embeddings: np.ndarray, budget: int, threshold: float = 0.9, *, block: int | None = None
) -> np.ndarray:
    """The rows `reference_select` keeps, in its order, computed a block of candidates at a time."""
    vectors = _checked(embeddings, budget, threshold)
    if block is not None and (isinstance(block, bool) or not isinstance(block, int) or block < 1):
        raise InvalidInput(f"block must be a positive integer, not {block!r}", field="block")
    n, d = vectors.shape
    target = min(budget, n)
    kept = np.empty((target, d), dtype=np.float32)  # contiguous: every block product reads it
    chosen = np.empty(target, dtype=np.int64)
    count = start = 0
    while count < target and start < n:
        size = block or _block_size(target - count, count, start)
        stop = min(n, start + size)
        candidates = vectors[start:stop]
        if count:
            similarities = candidates @ kept[:count].T
            blocked = _too_similar(similarities, candidates, kept[:count], threshold)
            survivors = np.flatnonzero(~blocked)
            del similarities
        else:
            survivors = np.arange(stop - start)
        if survivors.size:
            passing = survivors[_settle_block(candidates[survivors], threshold)]
            passing = passing[: target - count]
            kept[count : count + passing.size] = candidates[passing]
            chosen[count : count + passing.size] = start + passing
            count += passing.size
        start = stop
    return chosen[:count].copy()


# ---------------------------------------------------------------- helpers


def _checked(embeddings: np.ndarray, budget: int, threshold: float) -> np.ndarray:
    """The embeddings as a C-ordered float32 matrix (no copy when they already are one)."""
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 0:
        raise InvalidInput(f"budget must be a non-negative integer, not {budget!r}", field="budget")
    if not -1.0 < float(threshold) <= 1.0:
        raise InvalidInput(f"threshold must be in (-1, 1], not {threshold!r}", field="threshold")
    vectors = np.asarray(embeddings)
    if vectors.ndim != 2:
        raise InvalidInput(
            f"embeddings must be a 2-D (examples x dimensions) array, not {vectors.ndim}-D",
            field="embeddings",
        )
    if vectors.shape[0] and vectors.shape[1] == 0:
        raise InvalidInput("embeddings have zero dimensions", field="embeddings")
    return np.ascontiguousarray(vectors, dtype=np.float32)


def _block_size(needed: int, kept: int, scanned: int) -> int:
    """Enough candidates to fill what is still needed at the pass rate seen so far."""
    pass_rate = (kept + 1) / (scanned + 1)
    wanted = math.ceil(needed / pass_rate)
    ceiling = max(MIN_BLOCK, min(MAX_BLOCK, MAX_SIMILARITIES // max(kept, 1)))
    return max(MIN_BLOCK, min(wanted, ceiling))


def _too_similar(
    similarities: np.ndarray, candidates: np.ndarray, kept: np.ndarray, threshold: float
) -> np.ndarray:
    """Per candidate (row of `similarities`): is some kept example above the threshold?"""
    top = similarities.max(axis=1)
    blocked = top > threshold + ROUNDING_BAND
    # Only rows whose closest kept example lies in the band need a closer look: rare.
    for row in np.flatnonzero(~blocked & (top >= threshold - ROUNDING_BAND)):
        near = np.flatnonzero(similarities[row] >= threshold - ROUNDING_BAND)
        blocked[row] = any(_exact_dot(candidates[row], kept[col]) > threshold for col in near)
    return blocked


def _settle_block(block: np.ndarray, threshold: float) -> np.ndarray:
    """Positions in the block that the greedy loop keeps, given that each passed the kept set."""
    gram = block @ block.T
    rows, cols = np.nonzero(gram >= threshold - ROUNDING_BAND)
    earlier = cols < rows
    rows, cols = rows[earlier], cols[earlier]
    over = gram[rows, cols] > threshold + ROUNDING_BAND
    for i in np.flatnonzero(~over):  # in the band: re-decided exactly
        over[i] = _exact_dot(block[rows[i]], block[cols[i]]) > threshold
    rows, cols = rows[over], cols[over]
    keep = np.ones(block.shape[0], dtype=bool)
    if rows.size:
        # np.nonzero lists pairs row by row, so each row's earlier rivals are settled before it:
        # a candidate falls only if a rival that was itself kept is too similar.
        starts = np.flatnonzero(np.diff(rows)) + 1
        for row, rivals in zip(rows[np.r_[0, starts]], np.split(cols, starts), strict=True):
            if keep[rivals].any():
                keep[row] = False
    return np.flatnonzero(keep)


def _exact_dot(a: np.ndarray, b: np.ndarray) -> float:
    """The correctly rounded dot product of two float32 vectors (their products are exact)."""
    return math.fsum((a.astype(np.float64) * b.astype(np.float64)).tolist())
