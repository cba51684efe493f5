"""A generation run's estimate: how many LLM calls it will make and the most they can cost,
worked out before anything is sent (the budget reserves that much)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.datasets.service import get_dataset
from app.generation import methods, prompts
from app.generation.inputs import source_tasks
from app.generation.methods import ALPACA
from app.generation.spec import DEFAULT_N, GenerationSpec
from app.models import Example
from app.platform.config import LLMEndpoint
from app.platform.llm.budget import max_cost
from app.platform.llm.chat import ChatRequest
from app.platform.llm.endpoints import get_endpoint

# Assumed survivors per call, for the estimate only: Alpaca asks for 17 new tasks a call and
# about half pass the filters and the novelty check; Self-Instruct's continuation has fewer.
KEPT_PER_CALL = {ALPACA: 8, "self-instruct": 4}
ESTIMATE_SAMPLE = 200  # evol: parents the cost per call is averaged over
SEED_SAMPLE = 8  # self-instruct: seed tasks the prompts are sized on


@dataclass
class Estimate:
    """The calls a run will make and the most they can cost (what the budget reserves)."""

    method: str
    calls: int
    inputs: int  # seed tasks or parents
    rounds: int
    max_cost_usd: float | None  # None: the endpoint has no prices
    endpoint: str
    model: str
    note: str

    def as_dict(self) -> dict[str, Any]:
        """The estimate as a plain dict."""
        return asdict(self)


def _cost(endpoint: LLMEndpoint, prompts_and_sampling: list[tuple[str, dict[str, Any]]]) -> float:
    total = 0.0
    for prompt, sampling in prompts_and_sampling:
        request = ChatRequest.of([{"role": "user", "content": prompt}], **sampling)
        total += max_cost(endpoint, request.messages, request.max_tokens)
    return total


def estimate(session: Session, spec: GenerationSpec) -> Estimate:
    """How many calls the run makes and the most they cost, before anything is sent."""
    source = get_dataset(session, spec.source)  # an unknown name is a 404 before all else
    spec.check()
    endpoint = get_endpoint(spec.endpoint)
    # The inputs are counted; only the few rows the prompts are sized on are read.
    count, last = session.execute(
        select(func.count(), func.max(Example.id)).where(Example.dataset_id == source.id)
    ).one()
    last = last or 0
    if spec.method == "self-instruct":
        shown = source_tasks(session, source.id, last, SEED_SAMPLE)
        calls, per_call, note = _self_instruct_calls(spec, endpoint, shown)
        inputs = count
    else:
        inputs = min(spec.n, count) if spec.n else count
        sample = source_tasks(session, source.id, last, min(inputs, ESTIMATE_SAMPLE))
        calls, per_call, note = _evol_calls(spec, endpoint, sample, inputs)
    cost = per_call * calls if endpoint.priced else None
    if spec.batch:
        cost = cost * endpoint.batch_price_factor if cost is not None else None
        note += f"; as Batch API batches (one per step of the run), within {endpoint.batch_window}"
    return Estimate(
        spec.method, calls, inputs, spec.round_count, cost, spec.endpoint, endpoint.model, note
    )


def _self_instruct_calls(
    spec: GenerationSpec, endpoint: LLMEndpoint, rows: list[Any]
) -> tuple[int, float, str]:
    """(calls, the most one call costs on average, how the count was reached)."""
    n = spec.n or DEFAULT_N
    tasks = [prompts.Task(r[1], r[2], r[3]) for r in rows] or [prompts.Task("?")]
    kept = KEPT_PER_CALL[spec.variant]
    if spec.variant == ALPACA:
        calls = math.ceil(n / kept)
        each = _cost(endpoint, [(prompts.alpaca_prompt(tasks[:3]), methods.ALPACA_SAMPLING)])
        return calls, each, f"{n:,} new tasks at about {kept} kept per call"
    asked = math.ceil(n / kept)
    listing = prompts.self_instruct_prompt([t.instruction for t in tasks])
    instance = prompts.instance_prompt(tasks[0].instruction, tasks[:2])
    total = _cost(endpoint, [(listing, methods.SELF_INSTRUCT_SAMPLING)]) * asked + (
        _cost(endpoint, [(instance, methods.INSTANCE_SAMPLING)]) * n
    )
    calls = asked + n
    note = f"{asked:,} calls for instructions at about {kept} kept each, one instance call per task"
    return calls, total / calls, note


def _evol_calls(
    spec: GenerationSpec, endpoint: LLMEndpoint, sample: list[Any], parents: int
) -> tuple[int, float, str]:
    """(calls, the most one call costs on average, how the count was reached), the cost from
    the first parents (`sample`) of the `parents` that evolve."""
    if not parents:
        return 0, 0.0, "the dataset has no examples to evolve"
    asked: list[tuple[str, dict[str, Any]]] = []
    for _id, instruction, given, output in sample:
        prompt = f"{instruction}\n\n{given}" if given else instruction
        if spec.method == "evol-instruct":
            # The evolved prompt is at most 20 words longer; answering and judging it follow.
            longer = prompt + " x" * 20
            asked.append(
                (prompts.evol_instruct_prompt("constraints", prompt), methods.EVOL_SAMPLING)
            )
            asked.append((longer, methods.EVOL_SAMPLING))
            asked.append((prompts.equal_prompt(prompt, longer), methods.EQUAL_SAMPLING))
        else:
            rewrite = prompts.evol_quality_prompt("helpfulness", prompt, output)
            asked.append((rewrite, methods.EVOL_SAMPLING))
    per_parent = _cost(endpoint, asked) / len(sample)
    steps = 3 if spec.method == "evol-instruct" else 1
    calls = parents * spec.round_count * steps
    note = f"{parents:,} examples x {spec.round_count} rounds x {steps} call(s)"
    if steps == 3:
        note += " (an evolution eliminated early skips its answer and check)"
    return calls, per_parent / steps, note
