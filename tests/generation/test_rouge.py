"""ROUGE-L and the novelty index make exactly rouge-score's decisions, on the real seed tasks."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

import pytest
from rouge_score import rouge_scorer

from app.generation.rouge import NoveltyIndex, lcs_length, rouge_l, rouge_tokens

REFERENCE = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def _seeds(data_dir: Path) -> list[str]:
    lines = (data_dir / "alpaca" / "seed_tasks.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["instruction"] for line in lines if line.strip()]


def _reference(target: str, prediction: str) -> float:
    """Self-Instruct's call: the new instruction is the target, the pool entry the prediction."""
    tokenize = REFERENCE._tokenizer.tokenize
    return rouge_scorer._score_lcs(tokenize(target), tokenize(prediction)).fmeasure


@pytest.mark.parametrize(
    "text",
    [
        "Hello, World! It's 2024-05-01.",
        "Über naïve café \u2013 déjà vu; İstanbul ß ﬁne",
        "snake_case and CamelCase\tand\nnew lines",
        "",
        "   ...   ",
        "数学 and 123abc",
    ],
)
def test_tokens_are_rouge_scores(text: str) -> None:
    assert rouge_tokens(text) == REFERENCE._tokenizer.tokenize(text)


def test_lcs_matches_dynamic_programming() -> None:
    rng = random.Random(7)
    for _ in range(300):
        a = [rng.randrange(6) for _ in range(rng.randrange(0, 40))]
        b = [rng.randrange(6) for _ in range(rng.randrange(0, 40))]
        table = rouge_scorer._lcs_table(a, b)
        assert lcs_length(a, b) == table[-1][-1]


def test_seed_tasks_closest_pair_and_only_the_reference_pairs_above_07(data_dir: Path) -> None:
    seeds = _seeds(data_dir)
    assert len(seeds) == 175
    mine, theirs = {}, {}
    for i, j in itertools.combinations(range(len(seeds)), 2):
        ours, reference = rouge_l(seeds[j], seeds[i]), _reference(seeds[j], seeds[i])
        assert ours == reference, (i, j)
        if reference > 0.7:
            theirs[(i, j)] = reference
        if ours > 0.7:
            mine[(i, j)] = ours
    assert mine == theirs
    best = max(theirs, key=lambda pair: theirs[pair])
    assert best == (47, 74) and round(theirs[best], 4) == 0.8235
    # The index, fed the seeds one by one, stops exactly the later member of each such pair.
    index = NoveltyIndex()
    stopped = {}
    for j, seed in enumerate(seeds):
        match = index.admit(seed)
        if match is not None:
            stopped[(match.index, j)] = match.score
            index.add(seed)  # keep the pool the same as the pairwise check's
    assert stopped == theirs


def test_index_decides_as_the_pairwise_loop_on_near_duplicates(data_dir: Path) -> None:
    """Near-duplicates by dropped, swapped and replaced words land on both sides of 0.7."""
    seeds = _seeds(data_dir)
    rng = random.Random(3)
    candidates = []
    for seed in rng.sample(seeds, 30):
        words = seed.split()
        for _ in range(2):
            changed = list(words)
            for _ in range(rng.randrange(1, 5)):
                k = rng.randrange(len(changed))
                action = rng.randrange(3)
                if action == 0 and len(changed) > 2:
                    del changed[k]
                elif action == 1:
                    changed[k] = rng.choice(["table", "quickly", "three", "the", "poem"])
                else:
                    changed.insert(k, rng.choice(words))
            candidates.append(" ".join(changed))
    pool = list(seeds)
    index = NoveltyIndex()
    index.extend(pool)
    rejected = 0
    for candidate in candidates:
        scores = [_reference(candidate, other) for other in pool]
        match = index.admit(candidate)
        assert (match is not None) == (max(scores) > 0.7), candidate
        if match is not None:
            assert match.score == max(scores)
            rejected += 1
        else:
            pool.append(candidate)
    assert 0 < rejected < len(candidates)  # both decisions were exercised
