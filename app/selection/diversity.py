"""Diversity by geometry: k-center greedy (MoDS) and facility location with an optional quality
term (QDIT; at alpha 0 it is Superfiltering.D's diversity step).

k-center greedy, as in MoDS's `kcenter_greedy.py` (Sener and Savarese's core-set): Euclidean
distance; each step adds the point farthest from everything chosen (and held) so far, the lowest
position on a tie (`np.argmax`). Distances are sums of squared differences (not the expansion
|x|^2 - 2 x.c + |c|^2, which cancels), computed a chunk of rows at a time, so a duplicate of a
chosen point is exactly 0 away.

Facility location: FL(S) = sum over the pool of max(0, the largest similarity to S), cosine
similarity of the stored unit vectors. QDIT maximises (1 - alpha) FL(S) + alpha sum q(x).
Similarities are held in fixed point (`SCALE`), so every marginal gain is an exact integer: the
lazy greedy (stale gains are upper bounds, as the objective is submodular) then picks exactly
what the plain greedy picks, ties to the lowest position included, whatever order sums are
taken in. Up to `EXACT_LIMIT` points every similarity is kept; above it each point keeps only
its `NEIGHBOURS` most similar points (a sparse k-nearest-neighbour similarity), which the
result's note says.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

from app.platform.errors import InvalidInput

SCALE = 1 << 24  # similarities in [0, 1] as integers: float32's precision, exact sums
EXACT_LIMIT = 5000  # above this many points: the sparse k-nearest-neighbour similarity
NEIGHBOURS = 32
LAZY_BATCH = 16  # stale bounds refreshed at once by the lazy greedy
GROUP = 64  # columns per group when searching a row's nearest neighbours
CHUNK_BYTES = 1 << 25  # temporaries of about 32 MiB per chunk


def k_center(
    vectors: np.ndarray, budget: int, *, held: np.ndarray | None = None, first: int = 0
) -> list[int]:
    """Rows of `vectors` in k-center greedy order: from the held points (or from `first` when
    none are held), the farthest from all chosen so far, the lowest row on a tie."""
    points = _matrix(vectors)
    n = points.shape[0]
    target = min(_budget(budget), n)
    if not target:
        return []
    nearest = np.full(n, np.inf, dtype=np.float32)  # squared distance to the nearest center so far
    chosen: list[int] = []
    centers = _matrix(held, points.shape[1]) if held is not None else points[:0]
    for center in centers:
        _closer(points, center, nearest)
    if not len(centers):
        if not 0 <= first < n:
            raise InvalidInput(f"first: a row of the pool, not {first}", field="first")
        chosen.append(first)
        _closer(points, points[first], nearest)
        nearest[first] = -1.0
    while len(chosen) < target:
        row = int(np.argmax(nearest))
        chosen.append(row)
        _closer(points, points[row], nearest)
        nearest[row] = -1.0  # never again, not even after every point is covered
    return chosen


def _closer(points: np.ndarray, center: np.ndarray, nearest: np.ndarray) -> None:
    """Lower each point's distance to its nearest center by one new center."""
    step = max(1, CHUNK_BYTES // (4 * points.shape[1]))
    for start in range(0, points.shape[0], step):
        # float32 like the vectors: ten times quicker than float64, and a row's sum depends only
        # on the row, so duplicates tie exactly and a chosen point is exactly 0 away.
        diff = points[start : start + step] - center
        squared = np.einsum("ij,ij->i", diff, diff)
        part = nearest[start : start + step]
        # Chosen points hold -1 and stay there.
        np.minimum(part, squared, out=part, where=part >= 0)


# ---------------------------------------------------------------- facility location


@dataclass
class Similarity:
    """Fixed-point similarities above 0, a column per candidate: column j's entries are the
    pool points (rows[indptr[j]:indptr[j+1]]) it covers and by how much (values)."""

    indptr: np.ndarray
    rows: np.ndarray
    values: np.ndarray
    neighbours: int | None  # None: every similarity is kept
    found_by: str = "an exact search"  # how each point's neighbours were found

    @property
    def exact(self) -> bool:
        """True when every similarity above 0 is kept."""
        return self.neighbours is None

    @property
    def size(self) -> int:
        """How many points (rows and columns alike)."""
        return len(self.indptr) - 1


@dataclass
class FacilityResult:
    """The picks in order, the objective's two terms, and how the similarity was held."""

    picks: list[int]
    coverage: float  # FL(S) with the held points, in the similarity used
    quality: float  # sum of q over the picks
    exact: bool
    note: str | None


def similarity(vectors: np.ndarray, *, neighbours: int | None = None) -> Similarity:
    """Every similarity above 0 (up to `EXACT_LIMIT` points, or when `neighbours` is 0), else
    each point's `neighbours` nearest (the default `NEIGHBOURS`)."""
    points = _matrix(vectors)
    n = points.shape[0]
    k = NEIGHBOURS if neighbours is None and n > EXACT_LIMIT else (neighbours or 0)
    if not k or k >= n:
        return _dense(points)
    return _nearest(points, k)


def _dense(points: np.ndarray) -> Similarity:
    n = points.shape[0]
    step = max(1, CHUNK_BYTES // (4 * max(n, 1)))
    counts, rows, values = [np.zeros(1, dtype=np.int64)], [], []
    for start in range(0, n, step):
        block = _fixed(points[start : start + step] @ points.T)  # a row per candidate column
        column, row = np.nonzero(block)
        counts.append(np.bincount(column, minlength=block.shape[0]))
        rows.append(row.astype(np.int32))
        values.append(block[column, row])
    return Similarity(np.cumsum(np.concatenate(counts)), *_joined(rows, values), None)


def _nearest(points: np.ndarray, k: int) -> Similarity:
    n = points.shape[0]
    groups = -(-n // GROUP)
    step = max(1, CHUNK_BYTES // (4 * groups * GROUP))
    # Columns padded to whole groups with -inf, which never make a row's k nearest.
    block = np.full((step, groups * GROUP), -np.inf, dtype=np.float32)
    rows, columns, values = [], [], []
    for start in range(0, n, step):
        stop = min(n, start + step)
        np.matmul(points[start:stop], points.T, out=block[: stop - start, :n])
        top, near = _top_k(block[: stop - start], k)
        near = _fixed(near)
        keep = near > 0
        rows.append(np.broadcast_to(np.arange(start, stop)[:, None], top.shape)[keep])
        columns.append(top[keep])
        values.append(near[keep])
    return _by_column(n, rows, columns, values, k)


def from_neighbours(
    vectors: np.ndarray, neighbours: np.ndarray, found_by: str = "the vector index"
) -> Similarity:
    """The sparse similarity of given neighbour sets (a row of positions per point, -1 for
    none; e.g. from the vector index): each point covered only by its listed neighbours."""
    points = _matrix(vectors)
    n, k = neighbours.shape
    step = max(1, CHUNK_BYTES // (8 * max(k, 1) * max(points.shape[1], 1)))
    rows, columns, values = [], [], []
    for start in range(0, n, step):
        near = neighbours[start : start + step]
        listed = near >= 0
        row = np.broadcast_to(np.arange(start, start + len(near))[:, None], near.shape)[listed]
        column = near[listed]
        # float64 products: what the index found decides the sets, not the values.
        value = _fixed(
            np.einsum("ij,ij->i", points[row].astype(np.float64), points[column].astype(np.float64))
        )
        keep = value > 0
        rows.append(row[keep])
        columns.append(column[keep])
        values.append(value[keep])
    sim = _by_column(n, rows, columns, values, k)
    sim.found_by = found_by
    return sim


def _by_column(
    n: int, rows: list[np.ndarray], columns: list[np.ndarray], values: list[np.ndarray], k: int
) -> Similarity:
    column = np.concatenate(columns) if columns else np.zeros(0, dtype=np.int64)
    order = np.argsort(column, kind="stable")  # by column, rows ascending within each
    indptr = np.concatenate([[0], np.cumsum(np.bincount(column, minlength=n))])
    row, value = _joined(rows, values)
    return Similarity(indptr, row[order].astype(np.int32), value[order], k)


def _top_k(block: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's k largest entries (columns, values). A row's k largest lie in the k groups
    of `GROUP` columns with the largest maxima, so only those are searched."""
    count, width = block.shape
    groups = width // GROUP
    if groups > k:
        maxima = block.reshape(count, groups, GROUP).max(axis=2)
        best = np.argpartition(maxima, groups - k, axis=1)[:, groups - k :]
        columns = (best[:, :, None] * GROUP + np.arange(GROUP)).reshape(count, k * GROUP)
    else:
        columns = np.broadcast_to(np.arange(width), (count, width))
    values = np.take_along_axis(block, columns, axis=1)
    top = np.argpartition(values, values.shape[1] - k, axis=1)[:, values.shape[1] - k :]
    return np.take_along_axis(columns, top, axis=1), np.take_along_axis(values, top, axis=1)


def coverage_of(vectors: np.ndarray, held: np.ndarray | None = None) -> np.ndarray:
    """Each point's fixed-point similarity to its most similar held point (0 without any)."""
    points = _matrix(vectors)
    best = np.zeros(points.shape[0], dtype=np.int64)
    if held is None or not len(held):
        return best
    others = _matrix(held, points.shape[1])
    step = max(1, CHUNK_BYTES // (4 * len(others)))
    for start in range(0, len(points), step):
        best[start : start + step] = _fixed(points[start : start + step] @ others.T).max(axis=1)
    return best


def facility_location(
    sim: Similarity,
    budget: int,
    *,
    quality: np.ndarray | None = None,
    alpha: float = 0.0,
    covered: np.ndarray | None = None,
) -> FacilityResult:
    """Lazy greedy on (1 - alpha) FL(S) + alpha sum q: the picks of `plain_greedy`, in order."""
    state = _State.of(sim, budget, quality, alpha, covered)
    heap = [(-float(g), j) for j, g in enumerate(state.gains(np.arange(sim.size)))]
    heapq.heapify(heap)
    while len(state.picks) < state.target and heap:
        # The best few bounds are refreshed together: one vectorised evaluation, not many.
        popped = [heapq.heappop(heap) for _ in range(min(LAZY_BATCH, len(heap)))]
        columns = np.array([j for _, j in popped])
        fresh = [float(g) for g in state.gains(columns)]
        best = max(range(len(popped)), key=lambda i: (fresh[i], -popped[i][1]))
        j = popped[best][1]
        # Every bound left is at least its true gain: j wins if it beats the best of them.
        taken = not heap or (fresh[best], -j) >= (-heap[0][0], -heap[0][1])
        if taken:
            state.take(j)
        for i, (_, other) in enumerate(popped):
            if not (taken and i == best):
                heapq.heappush(heap, (-fresh[i], other))  # a fresh gain is a bound from now on
    return state.result()


def plain_greedy(
    sim: Similarity,
    budget: int,
    *,
    quality: np.ndarray | None = None,
    alpha: float = 0.0,
    covered: np.ndarray | None = None,
) -> FacilityResult:
    """The reference: every gain recomputed at every step, the first of the best taken."""
    state = _State.of(sim, budget, quality, alpha, covered)
    everyone = np.arange(sim.size)
    taken = np.zeros(sim.size, dtype=bool)
    while len(state.picks) < state.target:
        gains = np.where(taken, -np.inf, state.gains(everyone))
        j = int(np.argmax(gains))
        taken[j] = True
        state.take(j)
    return state.result()


@dataclass
class _State:
    sim: Similarity
    target: int
    quality: np.ndarray
    alpha: float
    cover: np.ndarray
    picks: list[int]

    @classmethod
    def of(
        cls,
        sim: Similarity,
        budget: int,
        quality: np.ndarray | None,
        alpha: float,
        covered: np.ndarray | None,
    ) -> _State:
        n = sim.size
        if not 0 <= alpha <= 1:
            raise InvalidInput("alpha: a weight in [0, 1]", field="alpha")
        q = np.zeros(n) if quality is None else np.asarray(quality, dtype=np.float64)
        if q.shape != (n,) or not np.isfinite(q).all():
            raise InvalidInput("quality: one finite value per point", field="quality")
        cover = np.zeros(n, dtype=np.int64) if covered is None else covered.astype(np.int64)
        return cls(sim, min(_budget(budget), n), q, float(alpha), cover.copy(), [])

    def gains(self, columns: np.ndarray) -> np.ndarray:
        """(1 - alpha) * exact coverage gain + alpha * q, for these candidate columns."""
        sim = self.sim
        starts, stops = sim.indptr[columns], sim.indptr[columns + 1]
        lengths = stops - starts
        entries = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(
            lengths.sum()
        )
        rise = np.maximum(sim.values[entries] - self.cover[sim.rows[entries]], 0)
        # Integer sums below 2**53: exact in float64, in any order.
        which = np.repeat(np.arange(len(columns)), lengths)
        coverage = np.bincount(which, weights=rise, minlength=len(columns))
        return (1 - self.alpha) * (coverage / SCALE) + self.alpha * self.quality[columns]

    def take(self, j: int) -> None:
        span = slice(self.sim.indptr[j], self.sim.indptr[j + 1])
        rows = self.sim.rows[span]
        self.cover[rows] = np.maximum(self.cover[rows], self.sim.values[span])
        self.picks.append(j)

    def result(self) -> FacilityResult:
        note = None
        if not self.sim.exact:
            note = (
                f"facility location over {self.sim.size:,} points approximates: a sparse "
                f"similarity, each point's {self.sim.neighbours} nearest neighbours by "
                f"{self.sim.found_by} (every similarity is used up to {EXACT_LIMIT:,} points)"
            )
        return FacilityResult(
            self.picks,
            float(self.cover.sum() / SCALE),
            float(self.quality[self.picks].sum()),
            self.sim.exact,
            note,
        )


def exact_coverage(vectors: np.ndarray, picks: list[int], held: np.ndarray | None = None) -> float:
    """FL of the picks (with the held points) in every similarity, not only the nearest ones."""
    points = _matrix(vectors)
    chosen = points[picks]
    if held is not None and len(held):
        chosen = np.concatenate([chosen, _matrix(held, points.shape[1])])
    return float(coverage_of(points, chosen).sum() / SCALE)


# ---------------------------------------------------------------- helpers


def _fixed(similarities: np.ndarray) -> np.ndarray:
    """Similarities as integers of 1/SCALE, those at or below 0 as 0 (they never count)."""
    clipped = np.clip(similarities.astype(np.float64), 0.0, 1.0)
    return np.rint(clipped * SCALE).astype(np.int64)


def _joined(rows: list[np.ndarray], values: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    if not rows:
        return np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int32)
    return np.concatenate(rows), np.concatenate(values).astype(np.int32)  # SCALE fits


def _budget(budget: int) -> int:
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 0:
        raise InvalidInput(f"budget must be a non-negative integer, not {budget!r}", field="budget")
    return int(budget)


def _matrix(vectors: np.ndarray | None, dim: int | None = None) -> np.ndarray:
    """The vectors as a C-ordered float32 (points x dimensions) matrix."""
    matrix = np.asarray(vectors if vectors is not None else np.zeros((0, dim or 0)))
    if matrix.ndim != 2 or (dim is not None and matrix.shape[1] != dim):
        raise InvalidInput("embeddings must be a (points x dimensions) matrix", field="embeddings")
    return np.ascontiguousarray(matrix, dtype=np.float32)


def first_center(candidates: list[int], scores: dict[int, float], seed: int) -> int:
    """k-center's start in an empty collection: the best-scored candidate (the first on a tie),
    or a seeded random one without scores."""
    scored = [k for k, i in enumerate(candidates) if i in scores]
    if scored:
        return max(scored, key=lambda k: (scores[candidates[k]], -k))
    return int(np.random.default_rng(seed).integers(len(candidates)))
