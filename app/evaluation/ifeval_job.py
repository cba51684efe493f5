"""An IFEval run's chunks: the model answers each prompt (from the answer store when it did
before), and IFEval's rules check each answer; no judge.

Like the pairwise chunks, a chunk evaluates the prompts of its range that have no settled item,
so running it twice writes nothing twice, and an answer that failed is asked again next run.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.evaluation import ifeval, judge
from app.evaluation.answers import (
    ENDPOINT,
    Answer,
    GenerationSettings,
    ModelRef,
    endpoint_answer,
    store_answers,
)
from app.evaluation.chunks import (
    generate_locally,
    known_answers,
    refresh_totals,
    unsettled_in_range,
    upsert_items,
)
from app.models import EvalPrompt, EvalRun, ItemState, Job
from app.platform.aio import run_async
from app.platform.db import release
from app.platform.jobs.progress import JobPaused, Progress
from app.platform.llm.budget import run_all_paid
from app.platform.llm.client import LLMClient
from app.platform.llm.endpoints import get_endpoint

PASS, FAIL = "pass", "fail"


def evaluate_ifeval_chunk(
    session: Session, job: Job, run: EvalRun, params: dict[str, Any], progress: Progress
) -> dict[str, Any]:
    """Answer and check one range of prompts; raises JobPaused (after writing) when the budget
    for the endpoint's answers ends."""
    prompts = unsettled_in_range(session, run, params)
    settings = GenerationSettings(**run.params["generation"])
    ref = ModelRef.parse(run.model_a)
    answers = known_answers(session, ref, prompts, settings)
    counts: dict[str, Any] = {}
    paused = False
    if ref.kind == ENDPOINT:
        release(session)  # the endpoint's answers are slow: hold no transaction meanwhile
        counts, paused = run_async(_ask(session, job, ref, prompts, answers, settings, progress))
    else:
        generate_locally(session, ref, prompts, settings, answers)
    made = (_row(run, p, answers[p.prompt_id]) for p in prompts)
    rows = [row for row in made if row is not None]
    upsert_items(session, rows)
    store_answers(session, str(ref), settings, answers.values())
    refresh_totals(session, run.id)
    progress(params["size"] - len(prompts) + len(rows), force=True)
    verdicts = [row["verdict"] for row in rows]
    counts = {
        "passed": verdicts.count(PASS),
        "failed_prompts": verdicts.count(judge.ERROR),
    } | counts
    if paused:
        raise JobPaused(counts)
    return counts


async def _ask(
    session: Session,
    job: Job,
    ref: ModelRef,
    prompts: list[EvalPrompt],
    answers: dict[str, Answer],
    settings: GenerationSettings,
    progress: Progress,
) -> tuple[dict[str, Any], bool]:
    """Fill the empty slots with the endpoint's answers, all at once (the client bounds what
    is in flight); a prompt whose answer could not be paid for keeps its empty slot."""
    async with LLMClient(ref.name, get_endpoint(ref.name), session, job_id=job.id) as client:

        async def ask(prompt: EvalPrompt) -> None:
            slot = answers[prompt.prompt_id]
            answer = await endpoint_answer(client, prompt.turns, settings)
            answer.key = slot.key
            answers[prompt.prompt_id] = answer

        missing = [p for p in prompts if answers[p.prompt_id].turns is None]
        paused = await run_all_paid([ask(p) for p in missing], progress)
        return client.stats.as_dict(), paused


def _row(run: EvalRun, prompt: EvalPrompt, answer: Answer) -> dict[str, Any] | None:
    """The item row of a checked answer (verdict: the prompt followed strictly or not), of a
    failed one, or None for a prompt left unanswered (the budget ran out)."""
    row: dict[str, Any] = {
        "run_id": run.id,
        "prompt_id": prompt.prompt_id,
        "position": prompt.position,
        "prompt": prompt.turns[0],
        "turns": prompt.turns,
        "category": prompt.category,
        "answers_a": answer.turns,
        "answers_b": None,
        "verdict_ab": None,
        "verdict_ba": None,
        "judge_ab": None,
        "judge_ba": None,
    }
    if answer.error is not None:
        return row | {"verdict": judge.ERROR, "state": ItemState.FAILED.value,
                      "error": f"model: {answer.error}", "raw": {}}  # fmt: skip
    if answer.turns is None:
        return None
    meta = prompt.meta
    checked = ifeval.check_response(
        prompt.turns[0], meta["instruction_id_list"], meta["kwargs"], answer.turns[0]
    )
    verdict = PASS if all(checked.strict) else FAIL
    return row | {"verdict": verdict, "state": ItemState.OK.value, "error": None,
                  "raw": checked.as_raw()}  # fmt: skip
