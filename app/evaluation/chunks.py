"""The evaluation job's chunks: answers from both models, the judge in both orders.

A chunk is a range of prompt positions. It evaluates the prompts in its range that have no
settled item (ok or parse_error), so running it twice writes nothing twice, and an item whose
answer or judge call failed is tried again by the next run. Answers come from `eval_answers`
when they were made before; every endpoint call goes through the LLM response cache.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from app.evaluation import ifeval, judge
from app.evaluation.answers import (
    ENDPOINT,
    Answer,
    GenerationSettings,
    ModelRef,
    answer_key,
    check_model,
    endpoint_answer,
    store_answers,
    stored_answers,
)
from app.models import EvalItem, EvalPrompt, EvalRun, ItemState, Job, TrainingRun
from app.models.base import utcnow
from app.platform.aio import run_async
from app.platform.db import release, upsert_where
from app.platform.errors import NotFound
from app.platform.jobs.progress import JobPaused, Progress
from app.platform.llm.budget import run_all_paid
from app.platform.llm.chat import ChatResult
from app.platform.llm.client import LLMClient
from app.platform.llm.endpoints import get_endpoint

T = TypeVar("T")
SETTLED = (ItemState.OK.value, ItemState.PARSE_ERROR.value)
SIDES = ("a", "b")


def _unsettled(run: EvalRun) -> Any:
    return in_run(select(EvalPrompt), run).where(
        ~exists().where(
            EvalItem.run_id == run.id,
            EvalItem.prompt_id == EvalPrompt.prompt_id,
            EvalItem.state.in_(SETTLED),
        ),
    )


def in_run(query: Any, run: EvalRun) -> Any:
    """`query` on EvalPrompt narrowed to the run's prompts: its test set's, or the first
    `limit` of them when the run has a limit."""
    query = query.where(EvalPrompt.test_set_id == run.test_set_id)
    if run.params.get("limit"):
        query = query.where(EvalPrompt.position < run.params["limit"])
    return query


def run_of(session: Session, job: Job) -> EvalRun:
    """The evaluation a job runs; NotFound once it is gone."""
    run = session.get(EvalRun, job.params["run_id"])
    if run is None:
        raise NotFound(f"the evaluation of job {job.id} no longer exists")
    return run


def plan_chunks(session: Session, run: EvalRun, size: int) -> tuple[int, list[dict[str, Any]]]:
    """The test set's size and ranges of positions, `size` unsettled prompts each."""
    total = session.scalar(in_run(select(func.count()).select_from(EvalPrompt), run))
    positions = [p.position for p in session.scalars(_unsettled(run).order_by(EvalPrompt.position))]
    return total or 0, [
        {
            "lo": positions[i],
            "hi": positions[min(i + size, len(positions)) - 1],
            "size": len(positions[i : i + size]),
        }
        for i in range(0, len(positions), size)
    ]


@dataclass
class Outcome:
    """One prompt's evaluation, as its item row will hold it."""

    prompt: EvalPrompt
    answers: dict[str, Answer]
    calls: dict[str, ChatResult | None]  # "ab" and "ba"

    def row(self, run: EvalRun, judge_prompt: str) -> dict[str, Any]:
        """The item row: verdicts by order, the combined verdict, state and error."""
        failed = [f"model {s.upper()}: {a.error}" for s, a in self.answers.items() if a.error]
        readings: dict[str, judge.Reading] = {}
        for order, call in self.calls.items():
            if call is None:
                continue
            if call.failed:
                failed.append(f"judge ({order}): {call.error}")
            else:
                readings[order] = judge.read_verdict(judge_prompt, call.text or "")
        by_model = {
            order: judge.as_model(readings[order].winner, a_shown_first=order == "ab")
            for order in readings
        }
        unreadable = [f"{o}: {r.reason}" for o, r in readings.items() if r.winner == judge.ERROR]
        state = (
            ItemState.FAILED if failed else ItemState.PARSE_ERROR if unreadable else ItemState.OK
        )
        verdict = (
            judge.combine(by_model["ab"], by_model["ba"]) if state == ItemState.OK else judge.ERROR
        )
        return {
            "run_id": run.id,
            "prompt_id": self.prompt.prompt_id,
            "position": self.prompt.position,
            "prompt": self.prompt.turns[0],
            "turns": self.prompt.turns,
            "category": self.prompt.category,
            "answers_a": self.answers["a"].turns,
            "answers_b": self.answers["b"].turns,
            "verdict_ab": by_model.get("ab"),
            "verdict_ba": by_model.get("ba"),
            "verdict": verdict,
            "judge_ab": _text(self.calls.get("ab")),
            "judge_ba": _text(self.calls.get("ba")),
            "state": state.value,
            "error": "; ".join(failed + unreadable) or None,
            "raw": _raw(readings, self.calls),
        }


def _text(call: ChatResult | None) -> str | None:
    return call.text if call is not None and not call.failed else None


def _raw(readings: dict[str, judge.Reading], calls: dict[str, ChatResult | None]) -> dict[str, Any]:
    done = [c for c in calls.values() if c is not None and not c.failed]
    return {
        "scores": {o: list(r.scores) for o, r in readings.items() if r.scores is not None},
        "judge_prompt_tokens": sum(c.prompt_tokens for c in done),
        "judge_completion_tokens": sum(c.completion_tokens for c in done),
        "judge_cost": sum(c.cost for c in done),
    }


def unsettled_in_range(session: Session, run: EvalRun, params: dict[str, Any]) -> list[EvalPrompt]:
    """The prompts of a chunk's range that have no settled item, in order."""
    query = _unsettled(run).where(
        EvalPrompt.position >= params["lo"], EvalPrompt.position <= params["hi"]
    )
    return list(session.scalars(query.order_by(EvalPrompt.position)))


def evaluate_chunk(
    session: Session, job: Job, params: dict[str, Any], progress: Progress
) -> dict[str, Any]:
    """Evaluate one range of prompts; raises JobPaused (after writing) when the budget ends."""
    run = run_of(session, job)
    prompts = unsettled_in_range(session, run, params)
    settings = GenerationSettings(**run.params["generation"])
    refs = {"a": ModelRef.parse(run.model_a), "b": ModelRef.parse(run.model_b)}
    answers = {side: known_answers(session, refs[side], prompts, settings) for side in SIDES}
    for side in SIDES:
        if refs[side].kind != ENDPOINT:
            generate_locally(session, refs[side], prompts, settings, answers[side])
    release(session)  # the judge's calls are slow: hold no transaction meanwhile
    outcomes, counts, paused = run_async(
        _evaluate(session, job, run, refs, prompts, answers, settings, progress)
    )
    rows = [o.row(run, run.params["judge_prompt"]) for o in outcomes if o is not None]
    upsert_items(session, rows)
    for side in SIDES:
        store_answers(session, str(refs[side]), settings, answers[side].values())
    refresh_totals(session, run.id)
    progress(params["size"] - len(prompts) + len(rows), force=True)
    counts = _state_counts(rows) | counts
    if paused:
        raise JobPaused(counts)
    return counts


def known_answers(
    session: Session, ref: ModelRef, prompts: list[EvalPrompt], settings: GenerationSettings
) -> dict[str, Answer]:
    """Answers by prompt id: those stored before, and empty slots (turns None) for the rest."""
    identity = check_model(session, ref)
    keys = {p.prompt_id: answer_key(identity, p.turns, settings) for p in prompts}
    stored = stored_answers(session, list(keys.values()))
    return {pid: stored.get(key) or Answer(None, key=key) for pid, key in keys.items()}


def generate_locally(
    session: Session,
    ref: ModelRef,
    prompts: list[EvalPrompt],
    settings: GenerationSettings,
    answers: dict[str, Answer],
) -> None:
    """Fill the empty slots with answers from the run's model, in batches."""
    from app.evaluation.local_model import generator_for

    missing = [p for p in prompts if answers[p.prompt_id].turns is None]
    if not missing:
        return
    run = session.get(TrainingRun, ref.run_id)
    assert run is not None
    release(session)  # generating takes minutes: hold no transaction meanwhile
    made = generator_for(run).answer([p.turns for p in missing], settings)
    for prompt, answer in zip(missing, made, strict=True):
        answer.key = answers[prompt.prompt_id].key
        answers[prompt.prompt_id] = answer


async def _evaluate(
    session: Session,
    job: Job,
    run: EvalRun,
    refs: dict[str, ModelRef],
    prompts: list[EvalPrompt],
    answers: dict[str, dict[str, Answer]],
    settings: GenerationSettings,
    progress: Progress,
) -> tuple[list[Outcome | None], dict[str, Any], bool]:
    """Answer (endpoints) and judge every prompt at once; the clients bound what is in flight.
    A prompt whose calls could not be paid for gets no item; the others are kept."""
    judge_prompt = run.params["judge_prompt"]
    outcomes: list[Outcome | None] = [None] * len(prompts)
    async with AsyncExitStack() as stack:
        clients: dict[str, LLMClient] = {}

        async def client(name: str) -> LLMClient:
            if name not in clients:
                made = LLMClient(name, get_endpoint(name), session, job_id=job.id)
                clients[name] = await stack.enter_async_context(made)
            return clients[name]

        judge_client = await client(run.judge)
        sides = {s: await client(refs[s].name) for s in SIDES if refs[s].kind == ENDPOINT}

        async def evaluate(i: int) -> None:
            prompt = prompts[i]
            got = {s: answers[s][prompt.prompt_id] for s in SIDES}
            missing = [s for s in SIDES if got[s].turns is None and s in sides]
            made = await _gather(
                [endpoint_answer(sides[s], prompt.turns, settings) for s in missing]
            )
            for side, answer in zip(missing, made, strict=True):
                answer.key = got[side].key
                got[side] = answers[side][prompt.prompt_id] = answer
            calls: dict[str, ChatResult | None] = {"ab": None, "ba": None}
            if all(got[s].turns is not None for s in SIDES):
                a, b = got["a"].turns, got["b"].turns
                assert a is not None and b is not None
                ab = judge.judge_request(judge_prompt, prompt.turns, a, b)
                ba = judge.judge_request(judge_prompt, prompt.turns, b, a)
                calls["ab"], calls["ba"] = await _gather(
                    [judge_client.complete(ab), judge_client.complete(ba)]
                )
            outcomes[i] = Outcome(prompt, got, calls)

        paused = await run_all_paid([evaluate(i) for i in range(len(prompts))], progress)
    counts: dict[str, Any] = {}
    for made_client in clients.values():
        for key, value in made_client.stats.as_dict().items():
            counts[key] = counts.get(key, 0) + value
    return outcomes, counts, paused


async def _gather(calls: list[Coroutine[Any, Any, T]]) -> list[T]:
    """Every call's result; the first exception is raised only once all have ended, so that
    no call is left running on its own (and its claim or reservation is settled)."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return cast(list[T], results)


def upsert_items(session: Session, rows: list[dict[str, Any]]) -> None:
    """Write items; an existing item is replaced only if it had failed."""
    keys = ("run_id", "prompt_id")
    upsert_where(session, EvalItem, rows, keys, EvalItem.state == ItemState.FAILED.value)


def _state_counts(rows: list[dict[str, Any]]) -> dict[str, Any]:
    verdicts = [row["verdict"] for row in rows]
    states = [row["state"] for row in rows]
    return {
        "wins": verdicts.count(judge.WIN),
        "ties": verdicts.count(judge.TIE),
        "losses": verdicts.count(judge.LOSE),
        "unreadable": states.count(ItemState.PARSE_ERROR.value),
        # Not "failed": the clients' counts of failed calls go next to these.
        "failed_prompts": states.count(ItemState.FAILED.value),
    }


def refresh_totals(session: Session, run_id: int) -> None:
    """Recount the run's verdicts from its items, holding the run's row: a chunk that commits
    meanwhile is waited for, and counted once it has."""
    session.execute(select(EvalRun.id).where(EvalRun.id == run_id).with_for_update(key_share=True))
    counts = dict(
        session.execute(
            select(EvalItem.verdict, func.count())
            .where(EvalItem.run_id == run_id)
            .group_by(EvalItem.verdict)
        ).all()
    )
    run = session.get(EvalRun, run_id, populate_existing=True)
    assert run is not None
    total = session.scalar(in_run(select(func.count()).select_from(EvalPrompt), run))
    settled = session.scalar(
        select(func.count()).where(EvalItem.run_id == run_id, EvalItem.state.in_(SETTLED))
    )
    if run.kind == ifeval.KIND:
        results = session.scalars(
            select(EvalItem.raw).where(
                EvalItem.run_id == run_id, EvalItem.state == ItemState.OK.value
            )
        )
        run.metrics = ifeval.summarise(ifeval.Checked.from_raw(raw) for raw in results)
    run.wins = counts.get(judge.WIN, 0)
    run.ties = counts.get(judge.TIE, 0)
    run.losses = counts.get(judge.LOSE, 0)
    run.errors = counts.get(judge.ERROR, 0)
    run.state = "succeeded" if settled == total else "running"
    run.finished_at = utcnow() if settled == total else None
