"""Near-duplicate clusters of texts or vectors, without a database: exact (normalised text),
MinHash LSH on word shingles, and embedding cosine above a threshold, joined by union-find."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence

import numpy as np

from app.models import DuplicateMethod
from app.platform.errors import InvalidInput

METHODS = tuple(m.value for m in DuplicateMethod)

# Defaults: Jaccard 0.8 over 5-word shingles (a light edit of a long answer stays a
# duplicate, a shared template with different content does not); cosine 0.95 for embeddings.
MINHASH_THRESHOLD = 0.8
SHINGLE_WORDS = 5
NUM_PERM = 128
EMBEDDING_THRESHOLD = 0.95
BLOCK_CELLS = 8_000_000  # similarity cells per block product: 32 MB of float32
_SPACE = re.compile(r"\s+")


def normalise_text(text: str) -> str:
    """Case-folded, with every run of whitespace one space: what exact and MinHash compare."""
    return _SPACE.sub(" ", text.casefold()).strip()


def shingles(text: str, size: int = SHINGLE_WORDS) -> set[bytes]:
    """The word shingles of a normalised text; a shorter text is one shingle."""
    words = text.split(" ")
    if len(words) <= size:
        return {text.encode("utf-8")}
    return {" ".join(words[i : i + size]).encode("utf-8") for i in range(len(words) - size + 1)}


class UnionFind:
    """Disjoint sets over 0..n-1."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        """The root of i's set."""
        root = i
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[i] != root:  # path compression keeps later finds short
            self.parent[i], i = root, self.parent[i]
        return root

    def union(self, a: int, b: int) -> None:
        """Join the sets of a and b."""
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def groups(self) -> list[list[int]]:
        """The sets of two or more, each sorted, ordered by their smallest member."""
        by_root: dict[int, list[int]] = {}
        for i in range(len(self.parent)):
            by_root.setdefault(self.find(i), []).append(i)
        return sorted((g for g in by_root.values() if len(g) > 1), key=lambda g: g[0])


def exact_clusters(texts: Sequence[str]) -> list[list[int]]:
    """Indices of texts equal after case-folding and collapsing whitespace."""
    by_digest: dict[bytes, list[int]] = {}
    for i, text in enumerate(texts):
        digest = hashlib.blake2b(normalise_text(text).encode("utf-8"), digest_size=16).digest()
        by_digest.setdefault(digest, []).append(i)
    return sorted((g for g in by_digest.values() if len(g) > 1), key=lambda g: g[0])


def minhash_clusters(
    texts: Sequence[str],
    threshold: float = MINHASH_THRESHOLD,
    shingle_words: int = SHINGLE_WORDS,
    num_perm: int = NUM_PERM,
) -> list[list[int]]:
    """Indices of texts whose estimated Jaccard similarity (word shingles) is >= threshold."""
    from datasketch import MinHash, MinHashLSH

    sketches = MinHash.bulk(
        (shingles(normalise_text(t), shingle_words) for t in texts), num_perm=num_perm, seed=1
    )
    # Above 0.9 datasketch finds too few bands; a lower LSH threshold only adds candidates,
    # and every candidate is checked against the real threshold below.
    lsh = MinHashLSH(threshold=min(threshold, 0.9), num_perm=num_perm)
    with lsh.insertion_session() as inserting:
        for i, sketch in enumerate(sketches):
            inserting.insert(i, sketch, check_duplication=False)
    found = UnionFind(len(texts))
    for i, sketch in enumerate(sketches):
        for j in lsh.query(sketch):
            # LSH candidates are only likely pairs: keep those whose estimate passes.
            if j > i and sketch.jaccard(sketches[j]) >= threshold:
                found.union(i, j)
    return found.groups()


def cosine_pairs(vectors: np.ndarray, threshold: float) -> Iterator[tuple[int, int]]:
    """Pairs i < j of unit vectors with cosine > threshold, one block of rows at a time."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n = len(vectors)
    rows = max(1, BLOCK_CELLS // max(n, 1))
    for start in range(0, n, rows):
        block = vectors[start : start + rows]
        # Only columns from `start` on: the pairs with earlier rows were seen already.
        similar = block @ vectors[start:].T
        for a, b in zip(*np.nonzero(similar > threshold), strict=True):
            i, j = start + int(a), start + int(b)
            if i < j:
                yield i, j


def embedding_clusters(
    vectors: np.ndarray, threshold: float = EMBEDDING_THRESHOLD
) -> list[list[int]]:
    """Indices of unit vectors joined by chains of cosine similarity above the threshold."""
    found = UnionFind(len(vectors))
    for i, j in cosine_pairs(vectors, threshold):
        found.union(i, j)
    return found.groups()


def find_clusters(
    method: str,
    texts: Sequence[str] = (),
    vectors: np.ndarray | None = None,
    threshold: float | None = None,
) -> list[list[int]]:
    """Clusters (lists of indices into texts or vectors) by one method."""
    if method == DuplicateMethod.EXACT:
        return exact_clusters(texts)
    if method == DuplicateMethod.MINHASH:
        return minhash_clusters(texts, threshold if threshold is not None else MINHASH_THRESHOLD)
    if method == DuplicateMethod.EMBEDDING:
        if vectors is None:
            raise InvalidInput("embedding clusters need vectors", field="method")
        limit = threshold if threshold is not None else EMBEDDING_THRESHOLD
        return embedding_clusters(vectors, limit)
    raise InvalidInput(f"method: {method!r} is not one of {', '.join(METHODS)}", field="method")
