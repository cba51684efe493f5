"""`sift experiment create|run|show`: arms built, trained and scored the same way."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from app.platform.cli.console import fail, out, user_errors
from app.platform.cli.jobs import job_transaction, run_job
from app.platform.cli.models import prepare_local_model
from app.platform.db import transaction

experiment_cli: typer.Typer = typer.Typer(
    help="Experiments: one pool, one budget, several arms, each trained and scored the same way."
)
commands = typer.Typer()
commands.add_typer(experiment_cli, name="experiment")


def _overrides(values: list[str]) -> dict[str, Any]:
    pairs: dict[str, Any] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            fail(f"--set {item!r}: write NAME=VALUE, e.g. --set learning_rate=2e-5")
        pairs[name.strip().replace("-", "_")] = value.strip()
    return pairs


@experiment_cli.command("create")
def create(
    name: str,
    dataset: Annotated[str, typer.Option("--dataset", help="the pool")],
    budget: Annotated[int, typer.Option("--budget", help="examples per arm")],
    arms: Annotated[
        list[str],
        typer.Option(
            "--arm",
            help="random, pool, threshold:EXPR, deita, lima-quota, "
            "recipe:NAME, collection:NAME or snapshot:ID",
        ),
    ],
    base_model: Annotated[
        Path, typer.Option("--base-model", help="a local model folder or .gguf file")
    ],
    preset: Annotated[str, typer.Option(help="lima, alpaca or custom")] = "alpaca",
    method: Annotated[str | None, typer.Option(help="lora or full")] = None,
    template: Annotated[str | None, typer.Option(help="auto, alpaca, vicuna")] = None,
    max_steps: Annotated[int | None, typer.Option("--max-steps")] = None,
    settings: Annotated[
        list[str] | None, typer.Option("--set", help="any hyper-parameter: NAME=VALUE")
    ] = None,
    ifeval: Annotated[
        str, typer.Option("--eval", help="ifeval (all 541 prompts) or ifeval:N (the first N)")
    ] = "ifeval",
    max_tokens: Annotated[int, typer.Option("--max-tokens", help="per answer")] = 512,
    judge: Annotated[
        str | None,
        typer.Option("--judge", help="an endpoint: judge every arm against the baseline"),
    ] = None,
    test_set: Annotated[str | None, typer.Option("--test-set", help="the judge's test set")] = None,
    baseline: Annotated[
        str | None, typer.Option("--baseline", help="the arm the others are judged against")
    ] = None,
    heldout: Annotated[
        float | None,
        typer.Option(
            "--heldout",
            help="a held-out split no arm may select, each run's loss measured on it: "
            "a fraction below 1 (0.05) or a count (100)",
        ),
    ] = None,
) -> None:
    """Create an experiment: its arms, the base model and training config they all share."""
    from app.experiments import service
    from app.training.service import build_params

    kind, _, count = ifeval.partition(":")
    if kind != "ifeval" or (count and not count.isdigit()):
        fail(f"--eval {ifeval!r}: write ifeval or ifeval:N")
    overrides = _overrides(settings or []) | {
        "method": method, "template": template, "max_steps": max_steps,
    }  # fmt: skip
    with user_errors():
        params = build_params(preset, **overrides)
    prepare_local_model(base_model)
    with user_errors(), transaction() as session:
        made = service.create_experiment(
            session, name, dataset, budget, list(arms), str(base_model), params,
            ifeval_prompts=int(count) if count else None, max_tokens=max_tokens, judge=judge,
            test_set=test_set, baseline=baseline, heldout=heldout,
        )  # fmt: skip
        line = f"experiment {made.name}: {len(arms)} arms of {budget} from {dataset}"
        if made.heldout_ids:
            line += f", {len(made.heldout_ids):,} examples held out"
    out.print(f"{line}; run it with: sift experiment run {name} --wait", highlight=False)


@experiment_cli.command("run")
def run(
    name: str,
    wait: Annotated[bool, typer.Option("--wait", help="follow every job until it ends")] = False,
) -> None:
    """Build each arm's snapshot, train it and score it on IFEval; what exists is reused, so a
    second run computes only what is missing (a new arm, a failed run)."""
    from app.experiments import runs, service

    with user_errors(), transaction() as session:
        experiment = service.get_experiment(session, name)
        runs.retry_failed(session, experiment)
        arm_names = [a.name for a in service.arms_of(session, experiment)]
    waiting = 0
    for arm_name, step, start in runs.plan(arm_names):
        with user_errors(), job_transaction() as session:
            job_id = runs.start_step(name, arm_name, start, session)
        if job_id is None:
            continue
        run_job(job_id, f"{name} · {arm_name} · {step}", wait)
        # Without --wait a later step starts once this one has ended: run this again then.
        waiting += not wait
    if waiting:
        out.print(f"{waiting} job(s) queued; run `sift experiment run {name}` again once they end")
    show(name, as_json=False)


@experiment_cli.command("show")
def show(
    name: str,
    as_json: Annotated[bool, typer.Option("--json", help="the leaderboard as JSON")] = False,
) -> None:
    """The leaderboard: each arm's size, run and IFEval metrics with 95% intervals, and the
    arms' overlap."""
    from app.experiments import service
    from app.experiments.leaderboard import METRICS, leaderboard

    with user_errors(), transaction() as session:
        board = leaderboard(session, service.get_experiment(session, name))
    if as_json:
        typer.echo(json.dumps(board, indent=2))
        return
    table = Table("arm", "size", "snapshot", "run", *METRICS, box=None)
    for arm in board["arms"]:
        cells = []
        for metric in METRICS:
            m = arm["metrics"].get(metric) or {}
            cells.append(
                f"{m['value']:.3f} [{m['low']:.3f}, {m['high']:.3f}]"
                if m.get("value") is not None
                else "-"
            )
        run_text = f"{arm['run']} ({arm['run_state']})" if arm["run"] else "-"
        table.add_row(arm["name"], str(arm["size"] or "-"), str(arm["snapshot"] or "-"), run_text,
                      *cells)  # fmt: skip
    out.print(table)
    names = [a["name"] for a in board["arms"]]
    overlap = Table("overlap (Jaccard)", *names, box=None)
    for arm_name, row in zip(names, board["overlap"], strict=True):
        overlap.add_row(arm_name, *("-" if v is None else f"{v:.2f}" for v in row))
    out.print(overlap)
