"""The three generation methods as runs against an LLM client, free of the database.

Every run is deterministic given its inputs, its seed and the model's answers: a run started
again (a resume after the budget ran out, a worker that died) asks the same questions in the
same order, gets its earlier answers from the response cache, and admits the same examples.
When the budget ends a run keeps only what an uninterrupted run would also have kept up to
that point, so that a resumed run never contradicts what was already written.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.generation import filters, prompts
from app.generation.prompts import Task
from app.generation.rouge import NoveltyIndex
from app.platform.errors import SiftError
from app.platform.llm.budget import BudgetExhausted
from app.platform.llm.chat import ChatRequest, ChatResult
from app.platform.llm.client import LLMClient

ALPACA = "alpaca"
SELF_INSTRUCT = "self-instruct"
VARIANTS = (ALPACA, SELF_INSTRUCT)

# Sampling as the original code asked for it.
ALPACA_SAMPLING = {"temperature": 1.0, "max_tokens": 3072}
SELF_INSTRUCT_SAMPLING = {"temperature": 0.7, "max_tokens": 1024}
INSTANCE_SAMPLING = {"temperature": 0.0, "max_tokens": 300}
EVOL_SAMPLING = {"temperature": 1.0, "max_tokens": 2048}
EQUAL_SAMPLING = {"temperature": 0.0, "max_tokens": 16}

ALPACA_SEEDS_PER_PROMPT = 3
SELF_INSTRUCT_SEEDS_PER_PROMPT = 6
SELF_INSTRUCT_MACHINE_PER_PROMPT = 2
INSTANCE_DEMOS = 2

Report = Callable[[int], None]


@dataclass
class Generated:
    """One new example and where it came from."""

    task: Task
    method: str
    round: int
    prompt: str
    parent_id: int | None = None  # an example that exists already
    parent_index: int | None = None  # an earlier item of the same run
    variant_group: int | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outcome:
    """What a run produced and what it threw away."""

    items: list[Generated] = field(default_factory=list)
    rejected: list[filters.Rejected] = field(default_factory=list)
    paused: bool = False
    stopped: str | None = None  # why a run ended before its target

    def reject(self, text: str, reason: str) -> None:
        """Record a generation that was thrown away."""
        self.rejected.append(filters.Rejected(text, reason))

    def counts(self) -> dict[str, Any]:
        """Generated, and rejections by kind of reason."""
        kinds = Counter(_reason_kind(r.reason) for r in self.rejected)
        counts: dict[str, Any] = {"generated": len(self.items)}
        counts.update({f"rejected {kind}": n for kind, n in sorted(kinds.items())})
        if self.stopped:
            counts["stopped"] = self.stopped
        return counts


def _reason_kind(reason: str) -> str:
    return reason.split(":")[0].split(" (")[0]


def _request(prompt: str, sampling: dict[str, Any]) -> ChatRequest:
    return ChatRequest.of([{"role": "user", "content": prompt}], **sampling)


async def _ask_all(
    client: LLMClient, requests: Sequence[ChatRequest]
) -> tuple[list[ChatResult], bool]:
    """Answers to `requests` in order, up to the first one the budget could not pay for."""
    answers = await asyncio.gather(*(client.complete(r) for r in requests), return_exceptions=True)
    kept: list[ChatResult] = []
    for answer in answers:
        if isinstance(answer, BudgetExhausted):
            return kept, True
        if isinstance(answer, BaseException):
            raise answer
        kept.append(answer)
    return kept, False


# ---------------------------------------------------------------- Self-Instruct and Alpaca


@dataclass(frozen=True)
class SelfInstructSpec:
    """How many instructions to grow, and how."""

    n: int
    variant: str = ALPACA
    batch_size: int = 5
    seed: int = 0
    max_calls: int = 1000


class _Grower:
    """State of one Self-Instruct/Alpaca run: the novelty pool and what it has kept."""

    def __init__(self, spec: SelfInstructSpec, seeds: list[Task], existing: list[str]) -> None:
        if not seeds:
            raise SiftError("self-instruct needs seed tasks: the seed dataset is empty")
        self.spec = spec
        self.seeds = seeds
        self.rng = random.Random(spec.seed)
        self.pool = NoveltyIndex()
        self.pool.extend(task.instruction for task in seeds)
        self.pool.extend(existing)
        self.outcome = Outcome()
        self.calls = 0

    @property
    def done(self) -> bool:
        return len(self.outcome.items) >= self.spec.n

    def prompt(self) -> tuple[str, int]:
        """The next prompt and how many tasks it shows."""
        if self.spec.variant == ALPACA:
            shown = self.rng.sample(self.seeds, min(ALPACA_SEEDS_PER_PROMPT, len(self.seeds)))
            return prompts.alpaca_prompt(shown), len(shown)
        machine = [item.task.instruction for item in self.outcome.items]
        chosen = self.rng.sample(machine, min(SELF_INSTRUCT_MACHINE_PER_PROMPT, len(machine)))
        wanted = SELF_INSTRUCT_SEEDS_PER_PROMPT + SELF_INSTRUCT_MACHINE_PER_PROMPT - len(chosen)
        chosen += [t.instruction for t in self.rng.sample(self.seeds, min(wanted, len(self.seeds)))]
        self.rng.shuffle(chosen)
        return prompts.self_instruct_prompt(chosen), len(chosen)

    def novel(self, instruction: str) -> bool:
        """Put `instruction` into the pool if nothing there scores above ROUGE-L 0.7 against it;
        record the rejection otherwise."""
        match = self.pool.admit(instruction)
        if match is not None:
            self.outcome.reject(instruction, f"near-duplicate: ROUGE-L {match.score:.4f}")
        return match is None

    def admit(self, task: Task, prompt: str, details: dict[str, Any]) -> bool:
        """Keep `task` if its instruction is novel enough (and the target is not reached)."""
        if self.done or not self.novel(task.instruction):
            return False
        details = {"variant": self.spec.variant, **details}
        self.outcome.items.append(Generated(task, "self-instruct", 1, prompt, details=details))
        return True


def alpaca_prompts(spec: SelfInstructSpec, seeds: list[Task], count: int) -> list[str]:
    """The first `count` prompts an Alpaca run sends (they depend on its seed alone)."""
    grower = _Grower(spec, seeds, [])
    return [grower.prompt()[0] for _ in range(count)]


async def self_instruct(
    client: LLMClient,
    spec: SelfInstructSpec,
    seeds: list[Task],
    existing: list[str],
    report: Report,
) -> Outcome:
    """Grow `spec.n` new tasks from the seeds (Alpaca: with inputs and outputs in one call;
    Self-Instruct: instructions first, then an instance for each)."""
    grower = _Grower(spec, seeds, existing)
    failures = 0
    while not grower.done:
        if grower.calls >= spec.max_calls:
            grower.outcome.stopped = f"{spec.max_calls} calls made without reaching {spec.n}"
            break
        size = min(spec.batch_size, spec.max_calls - grower.calls)
        batch = [grower.prompt() for _ in range(size)]
        sampling = ALPACA_SAMPLING if spec.variant == ALPACA else SELF_INSTRUCT_SAMPLING
        answers, paused = await _ask_all(client, [_request(p, sampling) for p, _ in batch])
        grower.calls += size
        failed = sum(1 for a in answers if a.failed)
        failures = failures + failed if failed == len(answers) else 0
        if answers and failures >= 3 * spec.batch_size:
            raise SiftError(f"generation stopped: the endpoint keeps failing ({answers[0].error})")
        for (prompt, shown), answer in zip(batch, answers, strict=False):
            if spec.variant == ALPACA:
                _take_alpaca(grower, prompt, shown, answer)
            elif await _take_self_instruct(client, grower, prompt, answer):
                paused = True
                break
        report(len(grower.outcome.items))
        if paused:
            grower.outcome.paused = True
            break
    return grower.outcome


def _take_alpaca(grower: _Grower, prompt: str, shown: int, answer: ChatResult) -> None:
    if answer.failed:
        grower.outcome.reject("", f"failed call: {answer.error}")
        return
    tasks, rejected = filters.parse_alpaca(answer.text or "", answer.finish_reason, shown)
    grower.outcome.rejected.extend(rejected)
    for task in tasks:
        grower.admit(task, prompt, {})


async def _take_self_instruct(
    client: LLMClient, grower: _Grower, prompt: str, answer: ChatResult
) -> bool:
    """Admit the novel instructions of one answer, each with an instance; True when the
    budget ran out (nothing of this answer is kept then)."""
    if answer.failed:
        grower.outcome.reject("", f"failed call: {answer.error}")
        return False
    instructions, rejected = filters.parse_self_instruct(answer.text or "", answer.finish_reason)
    grower.outcome.rejected.extend(rejected)
    novel = [instruction for instruction in instructions if grower.novel(instruction)]
    demos = [grower.seeds[i % len(grower.seeds)] for i in range(INSTANCE_DEMOS)]
    asked = [prompts.instance_prompt(instruction, demos) for instruction in novel]
    instances, paused = await _ask_all(client, [_request(p, INSTANCE_SAMPLING) for p in asked])
    grower.calls += len(asked)
    if paused:
        return True
    for instruction, question, instance in zip(novel, asked, instances, strict=True):
        parsed = None
        if not instance.failed:
            parsed = filters.parse_instance(instance.text or "", instance.finish_reason)
        if parsed is None:
            grower.outcome.reject(instruction, "no instance: the answer had no input and output")
            continue
        if grower.done:
            break
        given, output = parsed
        details = {"variant": SELF_INSTRUCT, "instance_prompt": question}
        grower.outcome.items.append(
            Generated(Task(instruction, given, output), "self-instruct", 1, prompt, details=details)
        )
    return False


# ---------------------------------------------------------------- Evol-Instruct and Evol-Quality


@dataclass(frozen=True)
class Parent:
    """An existing example to evolve: its id, instruction, input and answer."""

    id: int
    instruction: str
    input: str
    output: str

    @property
    def prompt(self) -> str:
        """The user turn: the instruction, then the input if any."""
        return f"{self.instruction}\n\n{self.input}" if self.input else self.instruction


def pick(seed: int, parent_id: int, round_: int, choices: Sequence[str]) -> str:
    """The operation for one parent in one round: random, and the same every time it is asked."""
    return random.Random(f"{seed}:{parent_id}:{round_}").choice(list(choices))


async def _evolve_instruction(
    client: LLMClient, current: str, method: str
) -> tuple[str, Task | None, str | None, dict[str, Any]]:
    """One Evol-Instruct step: (prompt, the new task or None, why it was eliminated, details)."""
    prompt = prompts.evol_instruct_prompt(method, current)
    evolved = await client.complete(_request(prompt, EVOL_SAMPLING))
    if evolved.failed:
        return prompt, None, f"failed call: {evolved.error}", {}
    text = (evolved.text or "").strip()
    reason = filters.evolution_rejection(text, evolved.finish_reason)
    if reason:
        return prompt, None, reason, {}
    answer, judged = await asyncio.gather(
        client.complete(_request(text, EVOL_SAMPLING)),
        client.complete(_request(prompts.equal_prompt(current, text), EQUAL_SAMPLING)),
    )
    if answer.failed or judged.failed:
        return prompt, None, f"failed call: {answer.error or judged.error}", {}
    reason = filters.answer_rejection(answer.text or "", answer.finish_reason)
    if reason is None and filters.is_equal_verdict(judged.text or ""):
        reason = "no information gain: judged equal to its parent"
    if reason:
        return prompt, None, reason, {}
    return prompt, Task(text, "", (answer.text or "").strip()), None, {"operation": method}


async def _rewrite_answer(
    client: LLMClient, parent: Parent, current: str, method: str
) -> tuple[str, Task | None, str | None, dict[str, Any]]:
    """One Evol-Quality step: Deita's rewrite of the answer `current` to the parent's prompt."""
    prompt = prompts.evol_quality_prompt(method, parent.prompt, current)
    rewritten = await client.complete(_request(prompt, EVOL_SAMPLING))
    if rewritten.failed:
        return prompt, None, f"failed call: {rewritten.error}", {}
    text = (rewritten.text or "").strip()
    reason = filters.evolution_rejection(text, rewritten.finish_reason)
    if reason:
        return prompt, None, reason, {}
    return prompt, Task(parent.instruction, parent.input, text), None, {"operation": method}


Step = Callable[[Parent, str, str], Awaitable[tuple[str, Task | None, str | None, dict[str, Any]]]]


async def _chain(
    parent: Parent,
    rounds: int,
    seed: int,
    methods: Sequence[str],
    step: Step,
    name: str,
    tick: Callable[[], None],
) -> tuple[list[Generated], list[filters.Rejected], bool]:
    """R rounds on one parent: a survivor is the next round's starting point; an eliminated
    evolution leaves it where it was (WizardLM puts it back into the pool)."""
    items: list[Generated] = []
    rejected: list[filters.Rejected] = []
    current = parent.prompt if name == "evol-instruct" else parent.output
    for round_ in range(1, rounds + 1):
        method = pick(seed, parent.id, round_, methods)
        try:
            prompt, task, reason, details = await step(parent, current, method)
        except BudgetExhausted:
            return items, rejected, True
        tick()
        if task is None:
            rejected.append(filters.Rejected(current[:200], reason or "eliminated"))
            continue
        items.append(
            Generated(
                task,
                name,
                round_,
                prompt,
                parent_id=parent.id if not items else None,
                parent_index=len(items) - 1 if items else None,
                variant_group=parent.id if name == "evol-quality" else None,
                details=details,
            )
        )
        current = task.instruction if name == "evol-instruct" else task.output
    return items, rejected, False


async def evolve(
    client: LLMClient,
    method: str,
    parents: list[Parent],
    rounds: int,
    seed: int,
    operations: Sequence[str],
    report: Report,
) -> Outcome:
    """Evol-Instruct or Evol-Quality over every parent at once, `rounds` rounds each."""

    async def instruct(parent: Parent, current: str, operation: str) -> Any:
        return await _evolve_instruction(client, current, operation)

    async def quality(parent: Parent, current: str, operation: str) -> Any:
        return await _rewrite_answer(client, parent, current, operation)

    step: Step = instruct if method == "evol-instruct" else quality
    outcome = Outcome()
    finished = 0

    def tick() -> None:
        nonlocal finished
        finished += 1
        report(finished)

    chains = await asyncio.gather(
        *(_chain(parent, rounds, seed, operations, step, method, tick) for parent in parents)
    )
    for items, rejected, paused in chains:
        offset = len(outcome.items)
        for item in items:
            if item.parent_index is not None:
                item.parent_index += offset
        outcome.items.extend(items)
        outcome.rejected.extend(rejected)
        outcome.paused = outcome.paused or paused
    return outcome
