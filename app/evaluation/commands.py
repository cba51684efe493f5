"""`sift eval`: pairwise evaluations, and the test sets they run on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from app.platform.cli.console import fail, out, user_errors
from app.platform.cli.jobs import launch
from app.platform.cli.models import prepare_local_model
from app.platform.db import transaction

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from app.evaluation.results import EvaluationSummary
    from app.models import Job

eval_cli: typer.Typer = typer.Typer(
    help="Evaluations: model A against model B on a test set, judged in both orders; or one "
    "model on IFEval (sift eval ifeval)."
)
commands = typer.Typer()
commands.add_typer(eval_cli, name="eval")

Wait = Annotated[bool, typer.Option("--wait", help="follow the job until it ends")]
Budget = Annotated[float | None, typer.Option("--budget", help="stop at this many USD")]


def _summary(run_id: int) -> EvaluationSummary:
    from app.evaluation import results, service

    with transaction() as session:
        return results.summary(session, service.get_evaluation(session, run_id))


def _result_line(shown: EvaluationSummary) -> str:
    if shown.kind == "ifeval":
        m = shown.metrics

        def pct(name: str) -> str:
            return f"{m[name]:.1%}" if m.get(name) is not None else "-"

        return (
            f"evaluation {shown.id}: IFEval of {shown.model_a} on {shown.test_set} "
            f"({m.get('prompts', 0)} of {shown.total} prompts checked, {shown.errors} failed): "
            f"prompt-level strict {pct('prompt_strict')}, loose {pct('prompt_loose')}; "
            f"instruction-level strict {pct('instruction_strict')}, "
            f"loose {pct('instruction_loose')}"
        )
    score = shown.winning_score
    return (
        f"evaluation {shown.id}: {shown.model_a} against {shown.model_b} on "
        f"{shown.test_set}: {shown.wins} wins, {shown.ties} ties, "
        f"{shown.losses} losses, {shown.errors} errors; winning score "
        + (f"{score:.3f}" if score is not None else "-")
    )


@eval_cli.callback(invoke_without_command=True)
def evaluate(
    ctx: typer.Context,
    a: Annotated[
        str | None, typer.Option("--a", help="model A: run:ID, model:PATH or endpoint:NAME")
    ] = None,
    b: Annotated[
        str | None, typer.Option("--b", help="model B: run:ID, model:PATH or endpoint:NAME")
    ] = None,
    test_set: Annotated[str | None, typer.Option("--test-set", help="a test set's name")] = None,
    judge: Annotated[str | None, typer.Option("--judge", help="the judge's endpoint")] = None,
    judge_prompt: Annotated[
        str, typer.Option("--judge-prompt", help="auto, alpagasus or mt-bench")
    ] = "auto",
    max_tokens: Annotated[int, typer.Option("--max-tokens", help="per answer")] = 512,
    temperature: Annotated[float, typer.Option(help="0: greedy")] = 0.0,
    top_p: Annotated[float, typer.Option("--top-p")] = 1.0,
    seed: Annotated[int, typer.Option(help="of sampled answers")] = 0,
    budget: Budget = None,
    batch: Annotated[
        bool,
        typer.Option("--batch", help="through the OpenAI Batch API: half the price, within 24 h"),
    ] = False,
    wait: Wait = False,
) -> None:
    """Evaluate model A against model B: both answer every prompt, the judge compares each
    pair twice with the answers swapped; prints win / tie / lose and the winning score."""
    if ctx.invoked_subcommand is not None:
        return
    if not (a and b and test_set and judge):
        fail("sift eval needs --a, --b, --test-set and --judge (or a command: see --help)")
    assert a and b and test_set and judge
    from app.evaluation.answers import GenerationSettings
    from app.evaluation.service import start_evaluation

    with user_errors():
        settings = GenerationSettings(max_tokens, temperature, top_p, seed)
    started: list[int] = []

    def start(session: Session) -> Job:
        from app.models import Job

        run = start_evaluation(
            session,
            a,
            b,
            test_set,
            judge,
            judge_prompt=judge_prompt,
            generation=settings,
            budget_usd=budget,
            batch=batch,
        )
        started.append(run.id)
        return session.get_one(Job, run.job_id)

    _prepare(a, b)
    launch(start, f"evaluate {a} against {b} on {test_set}", wait)
    _print_result(started[0])


@eval_cli.command("ifeval")
def ifeval_command(
    model: Annotated[
        str, typer.Option("--model", help="run:ID, model:PATH (a folder or .gguf) or endpoint:NAME")
    ],
    prompts: Annotated[
        Path | None,
        typer.Option("--prompts", help="a JSONL file in IFEval's layout (default: the 541)"),
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="only the first N prompts")] = None,
    max_tokens: Annotated[int, typer.Option("--max-tokens", help="per answer")] = 1280,
    temperature: Annotated[float, typer.Option(help="0: greedy")] = 0.0,
    top_p: Annotated[float, typer.Option("--top-p")] = 1.0,
    seed: Annotated[int, typer.Option(help="of sampled answers")] = 0,
    budget: Budget = None,
    wait: Wait = False,
) -> None:
    """IFEval: the model answers every prompt (sent verbatim as the one user message), and the
    reference's rules check each answer; prints prompt- and instruction-level accuracy."""
    from app.evaluation.answers import GenerationSettings
    from app.evaluation.service import start_ifeval

    with user_errors():
        settings = GenerationSettings(max_tokens, temperature, top_p, seed)
    started: list[int] = []

    def start(session: Session) -> Job:
        from app.models import Job

        run = start_ifeval(
            session,
            model,
            prompts=prompts.resolve() if prompts else None,
            limit=limit,
            generation=settings,
            budget_usd=budget,
        )
        started.append(run.id)
        return session.get_one(Job, run.job_id)

    _prepare(model)
    launch(start, f"IFEval of {model}", wait)
    _print_result(started[0])


def _prepare(*models: str) -> None:
    """Convert a local GGUF model now, saying so, before its evaluation starts."""
    from app.evaluation.answers import MODEL, ModelRef

    for text in models:
        with user_errors():
            ref = ModelRef.parse(text)
        if ref.kind == MODEL:
            prepare_local_model(ref.name)


def _print_result(run_id: int) -> None:
    shown = _summary(run_id)
    if shown.state not in ("queued", "running"):
        out.print(_result_line(shown), highlight=False)


@eval_cli.command("import-test-set")
def import_test_set(
    path: Annotated[Path | None, typer.Argument(help="a JSON list, JSONL or CSV file")] = None,
    name: Annotated[str, typer.Option("--name", help="the test set's name")] = "",
    format: Annotated[
        str, typer.Option(help="auto|vicuna|wizardlm|self-instruct|mt-bench|ifeval|prompts")
    ] = "auto",
    prompt_field: Annotated[
        str | None, typer.Option("--prompt-field", help="the field that holds the prompt")
    ] = None,
    dataset: Annotated[str | None, typer.Option("--dataset", help="instead of a file")] = None,
    snapshot: Annotated[
        str | None, typer.Option("--snapshot", help="instead of a file: a number or digest")
    ] = None,
) -> None:
    """Import a test set: a file (Vicuna, WizardLM, Self-Instruct, MT-Bench, or any records
    with a prompt field), or the user turns of a dataset or a snapshot."""
    from app.evaluation import service

    if not name:
        fail("--name is required")
    if (path is None) == (dataset is None and snapshot is None):
        fail("give a file, or --dataset or --snapshot")
    with user_errors(), transaction() as session:
        if path is not None:
            test_set, created = service.import_test_set_file(
                session, path.resolve(), name, format, prompt_field
            )
        else:
            test_set, created = service.import_test_set_from(
                session, name, dataset=dataset, snapshot=snapshot
            )
        line = (
            f"test set {test_set.name}: {test_set.prompt_count:,} prompts "
            f"({test_set.format}, up to {test_set.max_turns} turn(s))"
        )
    out.print(line if created else f"{line} (unchanged: already imported)", highlight=False)


@eval_cli.command("test-sets")
def test_sets() -> None:
    """List the test sets."""
    from app.evaluation import service

    table = Table("name", "format", "prompts", "turns", "source", box=None)
    with transaction() as session:
        for t in service.list_test_sets(session):
            table.add_row(t.name, t.format, f"{t.prompt_count:,}", str(t.max_turns), t.source)
    out.print(table)


@eval_cli.command("list")
def list_evaluations() -> None:
    """List evaluations with their totals and winning scores."""
    from app.evaluation import results, service

    table = Table(
        "id", "A", "B", "test set", "judge", "state", "W", "T", "L", "E", "score", box=None
    )
    with transaction() as session:
        for s in results.summaries(session, service.list_evaluations(session, limit=50)):
            # An IFEval run has no model B and no judge: its score is prompt-level strict.
            ifeval = s.kind == "ifeval"
            score = s.metrics.get("prompt_strict") if ifeval else s.winning_score
            table.add_row(
                str(s.id),
                s.model_a,
                "-" if ifeval else s.model_b,
                s.test_set,
                "IFEval rules" if ifeval else s.judge,
                s.state,
                *(str(n) for n in (s.wins, s.ties, s.losses, s.errors)),
                f"{score:.3f}" if score is not None else "-",
            )
    out.print(table)


@eval_cli.command("show")
def show(
    run_id: int,
    as_json: Annotated[bool, typer.Option("--json", help="the whole result as JSON")] = False,
) -> None:
    """An evaluation's result on one line, or as JSON (an IFEval run's metrics at the top)."""
    with user_errors():
        shown = _summary(run_id)
    if not as_json:
        out.print(_result_line(shown), highlight=False)
        return
    from app.evaluation.schemas import EvaluationOut

    body = EvaluationOut.model_validate(shown).model_dump(mode="json")
    body.update(body["metrics"])  # prompt_strict, prompt_loose, ... where any
    typer.echo(json.dumps(body, indent=2))


@eval_cli.command("retry")
def retry(run_id: int, budget: Budget = None, wait: Wait = False) -> None:
    """Ask again what failed (answers or judge calls) in an evaluation that has ended."""
    from app.evaluation.service import retry_evaluation

    launch(
        lambda session: retry_evaluation(session, run_id, budget_usd=budget),
        f"evaluation {run_id} (retry)",
        wait,
    )
    _print_result(run_id)
