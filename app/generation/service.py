"""Generation jobs: what a lead asks for, what it will cost, starting it; and reading back where a
generated example came from."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from app.datasets.records import parse_alpaca
from app.datasets.service import get_dataset, get_or_create_dataset
from app.generation import engine, prompts
from app.generation.engine import ALPACA, VARIANTS
from app.generation.store import insert_examples
from app.models import Dataset, Example, GenerationMethod, Job, Provenance, User
from app.platform.config import LLMEndpoint
from app.platform.errors import InvalidInput
from app.platform.jobs.dispatch import create_job
from app.platform.llm.budget import max_cost
from app.platform.llm.client import ChatRequest, get_endpoint, require_priced

GENERATE_KIND = "generate"
DEFAULT_ENDPOINT = "default"
METHODS = tuple(m.value for m in GenerationMethod)
DEFAULT_ROUNDS = {"self-instruct": 1, "evol-instruct": 4, "evol-quality": 5}
DEFAULT_N = 100
MAX_N = 100_000
MAX_ROUNDS = 10
# Assumed survivors per call, for the estimate only: Alpaca asks for 17 new tasks a call and
# about half pass the filters and the novelty check; Self-Instruct's continuation has fewer.
KEPT_PER_CALL = {ALPACA: 8, "self-instruct": 4}
# A run that keeps too little stops after this many times the estimated calls.
MAX_CALLS_FACTOR = 5
ESTIMATE_SAMPLE = 200  # evol: parents the cost per call is averaged over
SEED_SAMPLE = 8  # self-instruct: seed tasks the prompts are sized on
# Self-Instruct's 175 seed tasks, where the project keeps its public data.
SEED_TASKS = Path(__file__).resolve().parents[3] / "shared" / "data" / "alpaca" / "seed_tasks.jsonl"
SEED_DATASET = "self-instruct-seeds"


@dataclass
class GenerationSpec:
    """Everything that decides a generation run."""

    method: str
    source: str
    into: str
    n: int | None = None  # self-instruct: new tasks; evol: how many parents (None: all)
    rounds: int | None = None
    endpoint: str = DEFAULT_ENDPOINT
    budget_usd: float | None = None
    variant: str = ALPACA
    seed: int = 0
    operations: list[str] = field(default_factory=list)  # evol: a subset of the operations

    def check(self) -> None:
        """Refuse a spec that cannot run, naming the field."""
        if self.method not in METHODS:
            raise InvalidInput(f"method: one of {', '.join(METHODS)}", field="method")
        if self.n is not None and not 1 <= self.n <= MAX_N:
            raise InvalidInput(f"n: between 1 and {MAX_N:,}", field="n")
        if self.rounds is not None and not 1 <= self.rounds <= MAX_ROUNDS:
            raise InvalidInput(f"rounds: between 1 and {MAX_ROUNDS}", field="rounds")
        if self.method == "self-instruct" and self.rounds not in (None, 1):
            raise InvalidInput("rounds: self-instruct has one round", field="rounds")
        if self.variant not in VARIANTS:
            raise InvalidInput(f"variant: one of {', '.join(VARIANTS)}", field="variant")
        allowed = self.allowed_operations()
        unknown = [op for op in self.operations if op not in allowed]
        if unknown:
            raise InvalidInput(
                f"operations: {', '.join(unknown)} not among {', '.join(allowed)}",
                field="operations",
            )
        if self.budget_usd is not None and self.budget_usd <= 0:
            raise InvalidInput("budget: must be more than 0 USD", field="budget_usd")
        if not self.into.strip():
            raise InvalidInput("into: name the dataset to fill", field="into")

    def allowed_operations(self) -> tuple[str, ...]:
        """The operations this method picks from."""
        if self.method == "evol-instruct":
            return prompts.EVOL_INSTRUCT_METHODS
        if self.method == "evol-quality":
            return tuple(prompts.QUALITY_METHODS)
        return ()

    @property
    def round_count(self) -> int:
        """The rounds asked for, or the method's default (WizardLM 4, Deita 5)."""
        return self.rounds or DEFAULT_ROUNDS[self.method]


# ---------------------------------------------------------------- inputs


def source_tasks(session: Session, dataset_id: int, up_to_id: int, limit: int | None) -> list[Any]:
    """(id, instruction, input, output) of a dataset's single-turn-readable examples, by id."""
    query = (
        select(Example.id, Example.instruction, Example.input, Example.output, Example.messages)
        .where(Example.dataset_id == dataset_id, Example.id <= up_to_id)
        .order_by(Example.id)
    )
    if limit is not None:
        query = query.limit(limit)
    rows = []
    for example_id, instruction, given, output, messages in session.execute(query):
        if instruction is None:
            # A multi-turn example: its first user turn and the answer to it.
            users = [m["content"] for m in messages if m["role"] == "user"]
            answers = [m["content"] for m in messages if m["role"] == "assistant"]
            instruction, given, output = (
                users[0] if users else "",
                "",
                answers[0] if answers else "",
            )
        rows.append((example_id, instruction, given or "", output or ""))
    return rows


def _last_id(session: Session, dataset: Dataset) -> int:
    return session.scalar(select(func.max(Example.id)).where(Example.dataset_id == dataset.id)) or 0


def load_seed_tasks(path: Path) -> list[dict[str, Any]]:
    """Self-Instruct's seed-task file as Alpaca records (the first instance of each task)."""
    records = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                task = json.loads(line)
                instance = task["instances"][0]
                records.append(
                    {
                        "instruction": task["instruction"],
                        "input": instance["input"],
                        "output": instance["output"],
                    }
                    | ({"id": task["id"]} if "id" in task else {})
                )
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                raise InvalidInput(f"{path}: line {number} is not a seed task ({exc})") from exc
    return records


def seed_dataset(session: Session, path: Path | None = None, user: User | None = None) -> Dataset:
    """The dataset of Self-Instruct's seed tasks, imported from the seed-task file on first use."""
    path = path or SEED_TASKS
    dataset = get_or_create_dataset(session, SEED_DATASET, user)
    if session.scalar(select(func.count()).where(Example.dataset_id == dataset.id)):
        return dataset
    if not path.is_file():
        raise InvalidInput(f"no seed tasks: {path} is missing; name a seed dataset with --from")
    drafts = []
    for record in load_seed_tasks(path):
        draft = parse_alpaca({k: v for k, v in record.items() if k != "id"})
        draft.external_id, draft.source = record.get("id"), "self-instruct/seed"
        drafts.append(draft)
    insert_examples(session, dataset.id, drafts, origin="import")
    return dataset


# ---------------------------------------------------------------- estimate and start


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
        each = _cost(endpoint, [(prompts.alpaca_prompt(tasks[:3]), engine.ALPACA_SAMPLING)])
        return calls, each, f"{n:,} new tasks at about {kept} kept per call"
    asked = math.ceil(n / kept)
    listing = prompts.self_instruct_prompt([t.instruction for t in tasks])
    instance = prompts.instance_prompt(tasks[0].instruction, tasks[:2])
    total = _cost(endpoint, [(listing, engine.SELF_INSTRUCT_SAMPLING)]) * asked + (
        _cost(endpoint, [(instance, engine.INSTANCE_SAMPLING)]) * n
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
                (prompts.evol_instruct_prompt("constraints", prompt), engine.EVOL_SAMPLING)
            )
            asked.append((longer, engine.EVOL_SAMPLING))
            asked.append((prompts.equal_prompt(prompt, longer), engine.EQUAL_SAMPLING))
        else:
            rewrite = prompts.evol_quality_prompt("helpfulness", prompt, output)
            asked.append((rewrite, engine.EVOL_SAMPLING))
    per_parent = _cost(endpoint, asked) / len(sample)
    steps = 3 if spec.method == "evol-instruct" else 1
    calls = parents * spec.round_count * steps
    note = f"{parents:,} examples x {spec.round_count} rounds x {steps} call(s)"
    if steps == 3:
        note += " (an evolution eliminated early skips its answer and check)"
    return calls, per_parent / steps, note


def start_generation(
    session: Session,
    spec: GenerationSpec,
    *,
    user: User | None = None,
    idempotency_key: str | None = None,
) -> Job:
    """Queue a generation job; the `into` dataset is created if missing."""
    source = get_dataset(session, spec.source)
    spec.check()
    endpoint = get_endpoint(spec.endpoint)
    if spec.budget_usd is not None:
        require_priced(spec.endpoint, endpoint)
    into = get_or_create_dataset(session, spec.into, user)
    planned = estimate(session, spec)
    params: dict[str, Any] = {
        "method": spec.method,
        "source": source.name,
        "source_id": source.id,
        # Examples added to the source later (perhaps by this very job) are not inputs.
        "up_to_id": _last_id(session, source),
        "into": into.name,
        "n": spec.n,
        "rounds": spec.round_count,
        "endpoint": spec.endpoint,
        "model": endpoint.model,
        "variant": spec.variant,
        "seed": spec.seed,
        "operations": spec.operations or list(spec.allowed_operations()),
        "estimated_calls": planned.calls,
        "max_calls": max(20, planned.calls * MAX_CALLS_FACTOR),
    }
    total = (spec.n or DEFAULT_N) if spec.method == "self-instruct" else None
    job = create_job(
        session,
        GENERATE_KIND,
        params,
        queue="io",
        user=user,
        dataset_id=into.id,
        total=total,
        idempotency_key=idempotency_key,
    )
    job.budget_usd = spec.budget_usd
    return job


# ---------------------------------------------------------------- provenance


@dataclass
class Variant:
    """One answer of an Evol-Quality group: the original (round 0) or a rewrite."""

    example_id: int
    round: int
    operation: str | None
    output: str
    dataset: str


@dataclass
class ProvenanceView:
    """Where one generated example came from, ready to show."""

    example_id: int
    method: str
    round: int
    parent_example_id: int | None
    prompt: str
    endpoint: str
    model: str
    job_id: int | None
    variant_group: int | None
    details: dict[str, Any]
    created_at: datetime
    variants: list[Variant] = field(default_factory=list)

    @property
    def operation(self) -> str | None:
        """The evolution operation (deepen, helpfulness...), when there was one."""
        value = self.details.get("operation") or self.details.get("variant")
        return str(value) if value else None


def provenance_for(session: Session, example_ids: list[int]) -> dict[int, ProvenanceView]:
    """The provenance of each generated example among `example_ids` (others are absent)."""
    if not example_ids:
        return {}
    rows = session.scalars(select(Provenance).where(Provenance.example_id.in_(example_ids)))
    views = {
        row.example_id: ProvenanceView(
            row.example_id,
            row.method,
            row.round,
            row.parent_example_id,
            row.prompt,
            row.endpoint,
            row.model,
            row.job_id,
            row.variant_group,
            dict(row.details or {}),
            row.created_at,
        )
        for row in rows
    }
    groups = {v.variant_group for v in views.values() if v.variant_group is not None}
    members = _group_members(session, groups)
    for view in views.values():
        if view.variant_group is not None:
            view.variants = members.get(view.variant_group, [])
    return views


def _group_members(session: Session, groups: set[int]) -> dict[int, list[Variant]]:
    """Every answer of each group: its root example first, then the rewrites by round."""
    if not groups:
        return {}
    found: dict[int, list[Variant]] = {group: [] for group in groups}
    roots = session.execute(
        select(Example.id, Example.output, Example.messages, Dataset.name)
        .join(Dataset, Dataset.id == Example.dataset_id)
        .where(Example.id.in_(groups))
    )
    for example_id, output, messages, dataset in roots:
        found[example_id].append(Variant(example_id, 0, None, _answer(output, messages), dataset))
    rewrites = session.execute(
        select(Provenance, Example.output, Example.messages, Dataset.name)
        .join(Example, Example.id == Provenance.example_id)
        .join(Dataset, Dataset.id == Example.dataset_id)
        .where(Provenance.variant_group.in_(groups))
        .order_by(Provenance.variant_group, Provenance.round, Provenance.example_id)
    )
    for row, output, messages, dataset in rewrites:
        assert row.variant_group is not None
        operation = (row.details or {}).get("operation")
        variant = Variant(row.example_id, row.round, operation, _answer(output, messages), dataset)
        found[row.variant_group].append(variant)
    return found


def _answer(output: str | None, messages: list[dict[str, str]]) -> str:
    if output is not None:
        return output
    answers = [m["content"] for m in messages if m["role"] == "assistant"]
    return answers[-1] if answers else ""


def variants_of(session: Session, example_id: int) -> list[Variant]:
    """The Evol-Quality group an example belongs to (as the original or as a rewrite), side by
    side: the original first, then each rewrite by round; empty when it has none."""
    group = session.scalar(
        select(Provenance.variant_group)
        .where(
            or_(Provenance.example_id == example_id, Provenance.variant_group == example_id),
            Provenance.variant_group.is_not(None),
        )
        .limit(1)
    )
    if group is None:
        return []
    return _group_members(session, {group}).get(group, [])
