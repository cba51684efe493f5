"""The score job's chunks: which examples still need a score, and scoring one chunk.

A chunk is a range of content hashes. It scores the examples in its range that have no ok or
parse_error score from the job's scorer, so running it twice scores nothing twice, and a
failed score is tried again by the next run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import BigInteger, any_, bindparam, exists, func, select, true
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from app.models import Example, Job, Score, Scorer, ScorerKind, ScoreState
from app.platform.aio import run_async
from app.platform.db import release, upsert_where
from app.platform.errors import NotFound
from app.platform.jobs.chunked import key_ranges
from app.platform.jobs.progress import JobPaused, Progress
from app.platform.llm.budget import run_all_paid
from app.platform.llm.chat import ChatResult
from app.platform.llm.client import LLMClient
from app.platform.llm.endpoints import get_endpoint
from app.scoring.chat_requests import build_requests
from app.scoring.example_text import ExampleText
from app.scoring.interpretation import ScoreResult, derive, interpret, score_locally
from app.scoring.local_scoring import score_with_local_model
from app.scoring.recipes import Recipe, recipe_from_scorer

SETTLED = (ScoreState.OK.value, ScoreState.PARSE_ERROR.value)
T = TypeVar("T")


@dataclass(frozen=True)
class Pending:
    """An example that needs a score."""

    content_hash: str
    text: ExampleText


def _among(example_ids: Sequence[int] | None) -> Any:
    """Examples of a job restricted to a selection (every example of the dataset without one)."""
    if example_ids is None:
        return true()
    # One array parameter: a 100,000-id selection is not 100,000 bound parameters.
    return Example.id == any_(bindparam(None, list(example_ids), type_=ARRAY(BigInteger())))


def _unscored(dataset_id: int, scorer_id: int, example_ids: Sequence[int] | None = None) -> Any:
    return select(Example.content_hash).where(
        Example.dataset_id == dataset_id,
        _among(example_ids),
        ~exists().where(
            Score.content_hash == Example.content_hash,
            Score.scorer_id == scorer_id,
            Score.state.in_(SETTLED),
        ),
    )


def plan_chunks(
    session: Session,
    dataset_id: int,
    scorer_id: int,
    size: int,
    example_ids: Sequence[int] | None = None,
) -> tuple[int, list[dict[str, Any]]]:
    """The size of the dataset (or of the selection) and the hash ranges, `size` unscored
    examples each, to score."""
    total = (
        session.scalar(
            select(func.count()).where(Example.dataset_id == dataset_id, _among(example_ids))
        )
        or 0
    )
    unscored = _unscored(dataset_id, scorer_id, example_ids)
    hashes = session.scalars(unscored.order_by(Example.content_hash)).all()
    return total, key_ranges(hashes, size)


def pending_examples(
    session: Session,
    dataset_id: int,
    scorer_id: int,
    lo: str,
    hi: str,
    example_ids: Sequence[int] | None = None,
) -> list[Pending]:
    """The examples with hashes in [lo, hi] (of the selection, when given) that have no settled
    score yet."""
    query = (
        _unscored(dataset_id, scorer_id, example_ids)
        .add_columns(Example.messages, Example.instruction, Example.input, Example.output)
        .where(Example.content_hash >= lo, Example.content_hash <= hi)
        .order_by(Example.content_hash)
    )
    return [
        Pending(row[0], ExampleText.of(row[1], row[2], row[3], row[4]))
        for row in session.execute(query)
    ]


def score_chunk(
    session: Session, job: Job, params: dict[str, Any], progress: Progress
) -> dict[str, Any]:
    """Score one chunk of a score job; raises JobPaused (after writing) when the budget ends."""
    scorer = session.get(Scorer, job.params["scorer_id"])
    if scorer is None:
        raise NotFound(f"the scorer of job {job.id} no longer exists")
    assert job.dataset_id is not None
    recipe = recipe_from_scorer(scorer)
    examples = pending_examples(
        session,
        job.dataset_id,
        scorer.id,
        params["lo"],
        params["hi"],
        job.params.get("example_ids"),
    )
    counts: dict[str, Any] = {}
    paused = False
    results: list[tuple[ScoreResult, list[ChatResult]] | None]
    if not recipe.is_derived:
        release(session)  # models and endpoints are slow: hold no transaction meanwhile
    if recipe.is_derived:
        results = _derive(session, recipe, job.params["inputs"], examples)
    elif recipe.is_local:
        results = [(score_locally(recipe, example.text), []) for example in examples]
    elif recipe.kind == ScorerKind.LOCAL_LOGIT_SCORER:
        assert scorer.model is not None
        results = _score_with_local_model(recipe, scorer.model, examples)
    else:
        results, counts, paused = run_async(_rate(session, job, recipe, examples, progress))
    rows = [
        _row(example.content_hash, scorer.id, job.id, result)
        for example, result in zip(examples, results, strict=True)
        if result is not None
    ]
    upsert_scores(session, rows)
    progress(params["size"] - len(examples) + len(rows), force=True)
    counts = _state_counts(rows) | counts
    if paused:
        raise JobPaused(counts)
    return counts


def _state_counts(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    states = [row["state"] for row in rows]
    return {
        "scored": states.count(ScoreState.OK.value),
        "parse_errors": states.count(ScoreState.PARSE_ERROR.value),
        "failed": states.count(ScoreState.FAILED.value),
    }


def _row(
    content_hash: str, scorer_id: int, job_id: int, result: tuple[ScoreResult, list[ChatResult]]
) -> dict[str, Any]:
    score, calls = result
    return {
        "content_hash": content_hash,
        "scorer_id": scorer_id,
        "job_id": job_id,
        "value": score.value if score.state == ScoreState.OK else None,
        "state": score.state.value,
        "raw": score.raw,
        "details": score.details,
        "prompt_tokens": sum(c.prompt_tokens for c in calls),
        "completion_tokens": sum(c.completion_tokens for c in calls),
        "cost": sum(c.cost for c in calls),
        "latency_ms": sum(c.latency_ms or 0 for c in calls) if calls else None,
    }


def upsert_scores(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Write scores; an existing score is replaced only if it had failed."""
    keys = ("content_hash", "scorer_id")
    upsert_where(session, Score, rows, keys, Score.state == ScoreState.FAILED.value)


# ---------------------------------------------------------------- the kinds of scoring


def _derive(
    session: Session, recipe: Recipe, inputs: dict[str, int], examples: list[Pending]
) -> list[tuple[ScoreResult, list[ChatResult]] | None]:
    hashes = [example.content_hash for example in examples]
    stored: dict[str, dict[str, tuple[float | None, dict[str, Any]]]] = {}
    for name, scorer_id in inputs.items():
        rows = session.execute(
            select(Score.content_hash, Score.value, Score.details).where(
                Score.scorer_id == scorer_id,
                Score.state == ScoreState.OK.value,
                Score.content_hash.in_(hashes),
            )
        )
        stored[name] = {h: (value, details) for h, value, details in rows}
    return [
        (
            derive(
                recipe,
                {
                    n: by_hash[e.content_hash]
                    for n, by_hash in stored.items()
                    if e.content_hash in by_hash
                },
            ),
            [],
        )
        for e in examples
    ]


def _score_with_local_model(
    recipe: Recipe, path: str, examples: list[Pending]
) -> list[tuple[ScoreResult, list[ChatResult]] | None]:
    scores = score_with_local_model(recipe, path, [example.text for example in examples])
    return [(score, []) for score in scores]


async def _rate(
    session: Session, job: Job, recipe: Recipe, examples: list[Pending], progress: Progress
) -> tuple[list[tuple[ScoreResult, list[ChatResult]] | None], dict[str, Any], bool]:
    """Ask the endpoint about every example at once (the client bounds what is in flight).

    An example whose call could not be paid for gets no score; the others are kept."""
    name = job.params["endpoint"]
    results: list[tuple[ScoreResult, list[ChatResult]] | None] = [None] * len(examples)
    async with LLMClient(name, get_endpoint(name), session, job_id=job.id) as client:
        requests = [build_requests(recipe, example.text) for example in examples]
        await client.prefetch([r for per_example in requests for r in per_example])

        async def ask(i: int) -> int:
            calls = list(await asyncio.gather(*(client.complete(r) for r in requests[i])))
            results[i] = (interpret(recipe, examples[i].text, calls), calls)
            return i

        paused = await run_all_paid([ask(i) for i in range(len(examples))], progress)
        counts = client.stats.as_dict()
    return results, counts, paused
