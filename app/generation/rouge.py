"""ROUGE-L as Self-Instruct uses it, and a novelty index that stays fast as the pool grows.

`rouge_tokens` and `rouge_l` make exactly the decisions of
`rouge_score.rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)` (its tokenizer, its LCS,
its float arithmetic). The original code scores a new instruction against every instruction in
the pool; `NoveltyIndex` first bounds the LCS by the token-multiset overlap, counted for the
whole pool at once from an inverted index, and computes the exact (bit-parallel) LCS only for the
few instructions whose bound could pass the threshold.
"""

from __future__ import annotations

import re
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

# rouge_score/tokenize.py, without a stemmer.
_NON_ALPHANUM = re.compile(r"[^a-z0-9]+")
_SPACES = re.compile(r"\s+")
_VALID = re.compile(r"^[a-z0-9]+$")

SELF_INSTRUCT_THRESHOLD = 0.7


def rouge_tokens(text: str) -> list[str]:
    """The tokens rouge-score's default tokenizer gives (lower case, runs of [a-z0-9])."""
    tokens = _SPACES.split(_NON_ALPHANUM.sub(" ", text.lower()))
    return [token for token in tokens if _VALID.match(token)]


def lcs_length(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common subsequence of two id sequences (bit-parallel, Hyyrö)."""
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return 0
    masks: dict[int, int] = {}
    for position, token in enumerate(a):
        masks[token] = masks.get(token, 0) | (1 << position)
    full = (1 << len(a)) - 1
    row = full
    for token in b:
        match = masks.get(token)
        if match is None:
            continue
        low = row & match
        row = ((row + low) | (row - low)) & full
    return len(a) - row.bit_count()


def f_measure(lcs: int, target_len: int, prediction_len: int) -> float:
    """rouge-score's ROUGE-L F-measure, with its exact float operations and their order."""
    if not target_len or not prediction_len:
        return 0.0
    precision = lcs / prediction_len
    recall = lcs / target_len
    if precision + recall > 0:
        return 2 * precision * recall / (precision + recall)
    return 0.0


def rouge_l(target: str, prediction: str) -> float:
    """ROUGE-L F-measure of two texts, as `RougeScorer(["rougeL"]).score(target, prediction)`."""
    ids: dict[str, int] = {}
    a = [ids.setdefault(t, len(ids)) for t in rouge_tokens(target)]
    b = [ids.setdefault(t, len(ids)) for t in rouge_tokens(prediction)]
    return f_measure(lcs_length(a, b), len(a), len(b))


@dataclass(frozen=True)
class Match:
    """The pool entry most similar to a candidate, and their ROUGE-L."""

    index: int
    score: float


class NoveltyIndex:
    """A growing pool of instructions that answers "is this one within ROUGE-L `threshold` of
    anything in the pool?" as Self-Instruct's pairwise loop would, much faster.

    Self-Instruct calls `_score_lcs(new_tokens, pool_tokens)`: the new instruction is the
    target, each pool entry the prediction; `closest` keeps that order (it decides the last
    bit of the float).
    """

    def __init__(self, threshold: float = SELF_INSTRUCT_THRESHOLD) -> None:
        self.threshold = threshold
        self._ids: dict[str, int] = {}
        self._sequences: list[list[int]] = []
        self._lengths = array("i")
        # token id -> (pool rows holding it, how often each holds it)
        self._rows: list[array[int]] = []
        self._counts: list[array[int]] = []

    def __len__(self) -> int:
        return len(self._sequences)

    def _encode(self, text: str, grow: bool) -> list[int]:
        ids = []
        for token in rouge_tokens(text):
            found = self._ids.get(token)
            if found is None:
                if not grow:
                    ids.append(-1)  # a token the pool has never seen matches nothing
                    continue
                found = self._ids[token] = len(self._ids)
                self._rows.append(array("i"))
                self._counts.append(array("i"))
            ids.append(found)
        return ids

    def add(self, text: str) -> int:
        """Put an instruction into the pool; returns its index."""
        sequence = self._encode(text, grow=True)
        row = len(self._sequences)
        self._sequences.append(sequence)
        self._lengths.append(len(sequence))
        for token, count in Counter(sequence).items():
            self._rows[token].append(row)
            self._counts[token].append(count)
        return row

    def extend(self, texts: Iterable[str]) -> None:
        """Put many instructions into the pool."""
        for text in texts:
            self.add(text)

    def closest(self, text: str) -> Match | None:
        """The pool entry with the highest ROUGE-L above the threshold (the first such on a tie),
        or None when the candidate is novel."""
        candidate = self._encode(text, grow=False)
        n = len(candidate)
        if not n or not self._sequences:
            return None
        overlap = self._overlaps(candidate)
        lengths = np.frombuffer(self._lengths, dtype=np.int32)
        # LCS <= overlap, so F <= 2 * overlap / (n + m); a small margin keeps float rounding
        # from ever hiding a pair that the exact computation below would let through.
        bound = 2.0 * overlap / (n + lengths)
        rows = np.flatnonzero(bound > self.threshold - 1e-9)
        best: Match | None = None
        for row in rows.tolist():
            other = self._sequences[row]
            score = f_measure(lcs_length(candidate, other), n, len(other))
            if score > self.threshold and (best is None or score > best.score):
                best = Match(row, score)
        return best

    def _overlaps(self, candidate: list[int]) -> np.ndarray:
        """For every pool entry, the size of its token-multiset intersection with `candidate`."""
        overlap = np.zeros(len(self._sequences), dtype=np.float64)
        for token, count in Counter(candidate).items():
            if token < 0:
                continue
            rows = np.frombuffer(self._rows[token], dtype=np.int32)
            if count == 1:
                overlap[rows] += 1.0
            else:
                counts = np.frombuffer(self._counts[token], dtype=np.int32)
                overlap[rows] += np.minimum(counts, count)
        return overlap

    def admit(self, text: str) -> Match | None:
        """Add `text` to the pool if it is novel; return the match that kept it out otherwise."""
        match = self.closest(text)
        if match is None:
            self.add(text)
        return match
