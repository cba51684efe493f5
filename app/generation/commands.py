"""`sift generate self-instruct|evol-instruct|evol-quality`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from app.platform.cli.console import out, user_errors
from app.platform.cli.jobs import launch
from app.platform.db import transaction

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from app.generation.service import GenerationSpec
    from app.models import Job

generate_cli: typer.Typer = typer.Typer(
    help="Grow new examples (Self-Instruct) or evolve existing ones."
)
commands = typer.Typer()
commands.add_typer(generate_cli, name="generate")

Into = Annotated[str, typer.Option("--into", help="the dataset to fill (created if missing)")]
Rounds = Annotated[int | None, typer.Option("--rounds", help="evolution rounds")]
Endpoint = Annotated[str, typer.Option("--endpoint", help="LLM endpoint name")]
Budget = Annotated[float | None, typer.Option("--budget", help="stop at this many USD")]
Seed = Annotated[int, typer.Option("--seed", help="random seed of the sampling")]
Wait = Annotated[bool, typer.Option("--wait", help="follow the job until it ends")]
Batch = Annotated[
    bool, typer.Option("--batch", help="through the OpenAI Batch API: half the price, within 24 h")
]
EstimateOnly = Annotated[
    bool, typer.Option("--estimate", help="show the calls and cost; start nothing")
]


def _start(spec: GenerationSpec, wait: bool, estimate_only: bool, seeds: Path | None) -> None:
    """Show the estimate, then start the job (unless only the estimate was asked for)."""
    from app.generation.service import estimate, seed_dataset, start_generation

    with user_errors(), transaction() as session:
        if not spec.source:
            spec.source = seed_dataset(session, seeds).name
        planned = estimate(session, spec)
    cost = (
        f"up to ${planned.max_cost_usd:,.4f}"
        if planned.max_cost_usd is not None
        else "cost unknown (the endpoint has no prices)"
    )
    out.print(
        f"{spec.method} from {spec.source} into {spec.into}: about {planned.calls:,} calls, "
        f"{cost} ({planned.note})",
        highlight=False,
    )
    if estimate_only:
        return

    def start(session: Session) -> Job:
        return start_generation(session, spec)

    launch(start, f"{spec.method} into {spec.into}", wait)


@generate_cli.command("self-instruct")
def self_instruct(
    into: Into,
    source: Annotated[
        str | None,
        typer.Option("--from", help="the seed dataset (default: Self-Instruct's 175 seed tasks)"),
    ] = None,
    n: Annotated[int, typer.Option("--n", help="how many new tasks")] = 100,
    variant: Annotated[str, typer.Option(help="alpaca | self-instruct")] = "alpaca",
    seed_tasks: Annotated[
        Path | None, typer.Option("--seed-tasks", help="a seed-task JSONL file for the default")
    ] = None,
    endpoint: Endpoint = "default",
    budget: Budget = None,
    seed: Seed = 0,
    batch: Batch = False,
    wait: Wait = False,
    estimate_only: EstimateOnly = False,
) -> None:
    """Bootstrap new tasks from seed tasks, with Self-Instruct's filters and ROUGE-L check."""
    from app.generation.service import GenerationSpec

    spec = GenerationSpec(
        "self-instruct", source or "", into, n, None, endpoint, budget, variant, seed, batch=batch
    )
    _start(spec, wait, estimate_only, seed_tasks)


def _spec(method: str, source: str, into: str, n: int | None, rounds: int | None) -> GenerationSpec:
    from app.generation.service import GenerationSpec

    return GenerationSpec(method, source, into, n, rounds)


@generate_cli.command("evol-instruct")
def evol_instruct(
    source: Annotated[str, typer.Option("--from", help="the dataset whose prompts evolve")],
    into: Into,
    n: Annotated[int | None, typer.Option("--n", help="how many examples (default: all)")] = None,
    rounds: Rounds = None,
    endpoint: Endpoint = "default",
    budget: Budget = None,
    seed: Seed = 0,
    batch: Batch = False,
    wait: Wait = False,
    estimate_only: EstimateOnly = False,
) -> None:
    """Evolve prompts WizardLM's way (deepen or broaden), R rounds, with its elimination rules."""
    spec = _spec("evol-instruct", source, into, n, rounds)
    spec.endpoint, spec.budget_usd, spec.seed, spec.batch = endpoint, budget, seed, batch
    _start(spec, wait, estimate_only, None)


@generate_cli.command("evol-quality")
def evol_quality(
    source: Annotated[str, typer.Option("--from", help="the dataset whose answers improve")],
    into: Into,
    n: Annotated[int | None, typer.Option("--n", help="how many examples (default: all)")] = None,
    rounds: Rounds = None,
    endpoint: Endpoint = "default",
    budget: Budget = None,
    seed: Seed = 0,
    batch: Batch = False,
    wait: Wait = False,
    estimate_only: EstimateOnly = False,
) -> None:
    """Rewrite answers Deita's way; the variants of one answer stay side by side."""
    spec = _spec("evol-quality", source, into, n, rounds)
    spec.endpoint, spec.budget_usd, spec.seed, spec.batch = endpoint, budget, seed, batch
    _start(spec, wait, estimate_only, None)
