"""The `sift` command line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from app.core.config import get_settings
from app.core.db import transaction
from app.core.errors import SiftError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from app.models import Job

cli = typer.Typer(
    help="Sift: curate instruction-tuning data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_cli = typer.Typer(help="Database schema.", no_args_is_help=True)
user_cli = typer.Typer(help="Accounts.", no_args_is_help=True)
token_cli = typer.Typer(help="API tokens.", no_args_is_help=True)
jobs_cli = typer.Typer(help="Background jobs (with no sub-command: list them).")
cli.add_typer(db_cli, name="db")
cli.add_typer(user_cli, name="user")
cli.add_typer(token_cli, name="token")
cli.add_typer(jobs_cli, name="jobs")

out = Console()
err = Console(stderr=True)
ROOT = Path(__file__).resolve().parent.parent


def fail(message: str) -> None:
    """Print one clear error line and exit non-zero."""
    err.print(f"[bold red]error:[/] {message}", highlight=False, markup=True, soft_wrap=True)
    raise typer.Exit(1)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn a user's mistake into an error line instead of a traceback."""
    try:
        yield
    except SiftError as exc:
        fail(exc.message)


def progress_bar(unit: str = "") -> Progress:
    """A rich progress bar for long commands (on stderr, so stdout stays clean)."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn() if unit != "bytes" else TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[counts]}"),
        console=err,
        transient=False,
    )


# ---------------------------------------------------------------- database and accounts


def upgrade_database() -> None:
    """Apply every migration to the configured database."""
    from alembic import command
    from alembic.config import Config

    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    command.upgrade(config, "head")


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Apply migrations."""
    upgrade_database()
    out.print("database is up to date")


@db_cli.command("import-sqlite")
def db_import_sqlite(
    path: Annotated[Path, typer.Argument(help="the previous release's file, e.g. .sift/sift.db")],
) -> None:
    """Copy a SQLite release's database into the new, empty PostgreSQL database (once)."""
    from rich.table import Column

    from app.core.sqlite_import import ImportProgress, check_sqlite_file, import_sqlite

    with user_errors():
        check_sqlite_file(path)  # a wrong file is refused before any server starts
    upgrade_database()
    bar = progress_bar()
    task = bar.add_task("copy", total=None, counts="")

    def show(step: ImportProgress) -> None:
        bar.start()  # once the checks passed: a refusal prints its line alone
        bar.update(task, description=step.step, completed=step.done, total=step.total)

    try:
        result = import_sqlite(path, progress=show)
    except SiftError as exc:
        bar.stop()
        fail(exc.message)
    bar.update(task, description="imported")
    bar.stop()
    table = Table("table", Column("rows", justify="right"), box=None)
    for count in sorted(result.tables, key=lambda c: c.table):
        table.add_row(count.table, f"{count.rows:,}")
    out.print(table)
    out.print(result.line())


@user_cli.command("add")
def user_add(
    name: str,
    role: Annotated[str, typer.Option(help="admin, lead or annotator")] = "annotator",
    password_stdin: Annotated[bool, typer.Option("--password-stdin")] = False,
    if_missing: Annotated[
        bool, typer.Option("--if-missing", help="do nothing if it exists")
    ] = False,
) -> None:
    """Create an account; without --password-stdin a password is generated and shown once."""
    from sqlalchemy import select

    from app.models import User
    from app.users import service

    password = sys.stdin.readline().rstrip("\n") if password_stdin else service.generate_password()
    if password_stdin and len(password) < 8:
        fail("the password must be at least 8 characters")
    with user_errors(), transaction() as session:
        if if_missing and session.scalar(select(User.id).where(User.name == name)) is not None:
            return
        service.create_user(session, name, role, password)
    out.print(f"created {role} {name!r}")
    if not password_stdin:
        out.print(f"password: {password}  (shown once; keep it somewhere safe)")


@token_cli.command("create")
def token_create(user: str) -> None:
    """Print a new API token for USER."""
    from app.users import service

    with user_errors(), transaction() as session:
        token = service.create_token(session, service.get_user(session, user))
    print(token)


# ---------------------------------------------------------------- jobs


def pid_file() -> Path:
    """Where `sift serve` records its process id."""
    return get_settings().data_dir / "serve.pid"


def embedded_server_running() -> bool:
    """True when a `sift serve` with its own worker is running on this data directory."""
    try:
        pid = int(pid_file().read_text().strip())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
        return False
    return True


def follow_job(job_id: int, title: str) -> str:
    """Show a job's progress until it ends; return its final state."""
    from app.jobs.service import get_job

    with progress_bar() as bar:
        task = bar.add_task(title, total=None, counts="")
        while True:
            with transaction() as session:
                job = get_job(session, job_id)
                state, done, total, counts = job.state, job.done, job.total, job.counts
                terminal = job.is_terminal or state == "paused_budget"
            bar.update(task, completed=done, total=total, counts=format_counts(counts))
            if terminal:
                return state
            time.sleep(0.5)


# The counts that say what a job did come first; the rest (calls, tokens, cost) after them in
# name order. PostgreSQL's JSONB keeps no key order, so the order is chosen here.
HEADLINE_COUNTS = (
    "generated", "new", "added", "embedded", "scored", "wins", "ties", "losses", "clusters",
    "duplicates", "invalid", "parse_errors", "unreadable", "failed_prompts", "failed",
)  # fmt: skip


def _count_order(key: str) -> tuple[int, str]:
    return (
        (HEADLINE_COUNTS.index(key), "") if key in HEADLINE_COUNTS else (len(HEADLINE_COUNTS), key)
    )


def format_counts(counts: dict[str, Any]) -> str:
    """A job's counts on one line: "new 1,000, sent 12, cost $0.0123"."""
    parts = []
    for key in sorted(counts, key=_count_order):
        value = counts[key]
        if key == "cost":
            parts.append(f"cost ${value:,.4f}")
        elif isinstance(value, int):
            parts.append(f"{key.replace('_', ' ')} {value:,}")
        elif isinstance(value, float):
            parts.append(f"{key.replace('_', ' ')} {value:,.4g}")
        else:
            parts.append(f"{key.replace('_', ' ')} {value}")
    return ", ".join(parts)


def launch(
    start: Callable[[Session, bool], Job], title: str | Callable[[Job], str], wait: bool
) -> None:
    """Create a job in one transaction with `start(session, send)` (sent to the workers unless
    it will run here), then run it here or follow it."""
    with user_errors(), transaction() as session:
        job = start(session, not runs_here())
        job_id, heading = job.id, title(job) if callable(title) else title
    run_job(job_id, heading, wait)


def run_job(job_id: int, title: str, wait: bool) -> None:
    """Run a job here (embedded, no server) or leave it to the workers, following it if asked."""
    from app.jobs.registry import load_handlers
    from app.jobs.runner import execute_job

    if runs_here():
        load_handlers()
        with progress_bar() as bar:
            task = bar.add_task(title, total=None, counts="")

            def show(done: int, total: int | None, counts: dict[str, Any] | None = None) -> None:
                bar.update(task, completed=done, total=total)
                if counts:
                    bar.update(task, counts=format_counts(counts))

            state = execute_job(job_id, show, inline=True)
    elif wait:
        state = follow_job(job_id, title)
    else:
        out.print(f"job {job_id} queued; follow it with: sift jobs --watch")
        return
    report_job(job_id, state)


def report_job(job_id: int, state: str) -> None:
    """The one-line ending of a job command; non-zero exit if it did not succeed."""
    from app.jobs.service import get_job

    with transaction() as session:
        job = get_job(session, job_id)
        counts = format_counts(job.counts)
        error = job.error
    if state == "succeeded":
        out.print(f"job {job_id} succeeded: {counts}")
        return
    fail(f"job {job_id} {state}" + (f": {error}" if error else ""))


def _jobs_table() -> Table:
    from app.jobs.service import list_jobs

    table = Table("id", "kind", "state", "progress", "counts", "error", box=None)
    with transaction() as session:
        for job in list_jobs(session, limit=30):
            share = f"{job.done / job.total:.0%}" if job.total else f"{job.done:,}"
            counts = " ".join(f"{k}={v}" for k, v in job.counts.items())
            table.add_row(str(job.id), job.kind, job.state, share, counts, (job.error or "")[:60])
    return table


@jobs_cli.callback(invoke_without_command=True)
def jobs(
    ctx: typer.Context,
    watch: Annotated[bool, typer.Option("--watch", help="refresh until interrupted")] = False,
) -> None:
    """List recent jobs with their progress."""
    if ctx.invoked_subcommand is not None:
        return
    if not watch:
        out.print(_jobs_table())
        return
    from rich.live import Live

    with Live(_jobs_table(), console=out, refresh_per_second=2) as live:
        try:
            while True:
                time.sleep(1)
                live.update(_jobs_table())
        except KeyboardInterrupt:
            pass


@jobs_cli.command("cancel")
def jobs_cancel(job_id: int) -> None:
    """Cancel a job that has not finished."""
    from app.jobs.service import cancel_job

    with user_errors(), transaction() as session:
        cancel_job(session, job_id)
    out.print(f"job {job_id} cancelled")


@jobs_cli.command("resume")
def jobs_resume(
    job_id: int,
    budget: Annotated[float | None, typer.Option("--budget", help="a new budget in USD")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="follow the job until it ends")] = False,
) -> None:
    """Start again a job that is not running (paused, failed, cancelled, or queued with its
    message lost), skipping what it has already done."""
    from app.jobs.service import resume_job

    launch(
        lambda session, send: resume_job(session, job_id, budget_usd=budget, send=send),
        lambda job: f"{job.kind} (job {job.id})",
        wait,
    )


# ---------------------------------------------------------------- import and export


def _parse_mapping(pairs: list[str]) -> dict[str, str]:
    mapping = {}
    for pair in pairs:
        target, sep, source = pair.partition("=")
        if not sep or not target or not source:
            fail(f"--map takes FIELD=COLUMN, got {pair!r}")
        mapping[target.strip()] = source.strip()
    return mapping


@cli.command("import")
def import_(
    path: Path,
    dataset: Annotated[str, typer.Option("--dataset", help="created if new")],
    format: Annotated[
        str, typer.Option(help="auto|alpaca|sharegpt|openai|dolly|lima|csv|parquet|jsonl")
    ] = "auto",
    source: Annotated[str | None, typer.Option(help="source of records that name none")] = None,
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="import the valid records even if some are bad")
    ] = False,
    map_: Annotated[
        list[str] | None, typer.Option("--map", help="FIELD=COLUMN, e.g. output=answer")
    ] = None,
    background: Annotated[bool, typer.Option("--background", help="run as a job")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="with --background: follow the job")] = False,
) -> None:
    """Import a file into a dataset: every record is validated; re-importing adds nothing."""
    from app.datasets import service
    from app.datasets.importer import ImportRejected, import_file

    mapping = _parse_mapping(map_ or [])
    path = path.resolve()
    if not path.is_file():
        fail(f"no such file: {path}")
    if background:
        launch(
            lambda session, send: service.start_import_job(
                session,
                service.get_or_create_dataset(session, dataset),
                path,
                fmt=format,
                source=source,
                skip_invalid=skip_invalid,
                mapping=mapping,
                send=send,
            ),
            f"import {path.name}",
            wait,
        )
        return
    with progress_bar("bytes") as bar:
        task = bar.add_task(f"import {path.name}", total=path.stat().st_size, counts="")
        try:
            with transaction() as session:
                target = service.get_or_create_dataset(session, dataset)
                summary = import_file(
                    session,
                    target,
                    path,
                    fmt=format,
                    source=source,
                    skip_invalid=skip_invalid,
                    mapping=mapping,
                    max_record_chars=get_settings().import_max_record_chars,
                    progress=lambda _n, done, total: bar.update(task, completed=done, total=total),
                )
        except ImportRejected as exc:
            bar.stop()
            err.print(exc.message, highlight=False, markup=False)
            raise typer.Exit(1) from exc
        except SiftError as exc:
            bar.stop()
            fail(exc.message)
    out.print(summary.line())
    if summary.invalid:
        for line in summary.errors[:20]:
            err.print(f"  skipped {line}", highlight=False, markup=False)


def runs_here() -> bool:
    """True when a job started now must run in this process: the embedded default, with no
    `sift serve` (and its worker) running."""
    settings = get_settings()
    return settings.embedded and not embedded_server_running()


@cli.command("export")
def export(
    out_path: Annotated[Path, typer.Option("--out", help="output file")],
    format: Annotated[
        str, typer.Option(help="alpaca|sharegpt|openai|dolly|lima|jsonl|parquet")
    ] = "jsonl",
    dataset: Annotated[str | None, typer.Option("--dataset")] = None,
    collection: Annotated[str | None, typer.Option("--collection")] = None,
    snapshot: Annotated[int | None, typer.Option("--snapshot")] = None,
    with_scores: Annotated[bool, typer.Option("--with-scores")] = False,
    with_embeddings: Annotated[bool, typer.Option("--with-embeddings")] = False,
    embedding_model: Annotated[str | None, typer.Option("--embedding-model")] = None,
) -> None:
    """Export a dataset, collection or snapshot; the file appears only when complete."""
    from app.datasets.exporter import ExportOptions, export_to_file, resolve_source

    options = ExportOptions(format, with_scores, with_embeddings, embedding_model)
    with user_errors(), transaction() as session, progress_bar() as bar:
        source, total = resolve_source(
            session, dataset=dataset, collection=collection, snapshot=snapshot
        )
        task = bar.add_task(f"export {out_path.name}", total=total, counts="")
        count = export_to_file(
            session, source, options, out_path, lambda n: bar.update(task, completed=n)
        )
    out.print(f"exported {count:,} records as {format} to {out_path}")


# ---------------------------------------------------------------- processes


def worker_command(queues: str, beat: bool, concurrency: int, pool: str | None = None) -> list[str]:
    """The argv of a Celery worker for `queues`, named uniquely on this host (two workers
    called `celery@HOST` would take each other's control replies and restart records)."""
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "workers.celery_app:celery_app",
        "worker",
        "-Q",
        queues,
        "-c",
        str(concurrency),
        "-n",
        f"sift-{queues.replace(',', '-')}-{os.getpid()}@%h",
        "--loglevel",
        "INFO",
    ]
    if beat:
        argv += ["--beat", "--schedule", str(get_settings().data_dir.resolve() / "beat-schedule")]
    if pool:
        argv += ["--pool", pool]
    return argv


# ---------------------------------------------------------------- scoring


@cli.command("score")
def score(
    dataset: Annotated[str, typer.Option("--dataset")],
    scorer: Annotated[
        str, typer.Option("--scorer", help="lima, length, alpagasus, deita-… or yours")
    ],
    endpoint: Annotated[
        str | None, typer.Option("--endpoint", help="LLM endpoint name (default: default)")
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="a local model folder for the Deita scorers")
    ] = None,
    budget: Annotated[float | None, typer.Option("--budget", help="stop at this many USD")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="follow the job until it ends")] = False,
) -> None:
    """Score every example of a dataset that has no score from this scorer yet."""
    from app.datasets.service import get_dataset
    from app.scoring.service import start_score_job

    launch(
        lambda session, send: start_score_job(
            session,
            get_dataset(session, dataset),
            scorer,
            endpoint=endpoint,
            model_path=model,
            budget_usd=budget,
            send=send,
        ),
        lambda job: f"score {dataset} with {job.params['scorer']}",
        wait,
    )


# ---------------------------------------------------------------- selection and collections


@cli.command("embed")
def embed(
    dataset: Annotated[str, typer.Option("--dataset")],
    model: Annotated[
        str | None,
        typer.Option(help="a local sentence-transformers or causal LM folder (default: MiniLM)"),
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="follow the job until it ends")] = False,
) -> None:
    """Embed every example of a dataset that has no embedding from this model yet."""
    from app.datasets.service import get_dataset
    from app.selection.embeddings import start_embed_job

    launch(
        lambda session, send: start_embed_job(
            session, get_dataset(session, dataset), model, send=send
        ),
        f"embed {dataset}",
        wait,
    )


@cli.command("dedup")
def dedup(
    dataset: Annotated[str, typer.Option("--dataset")],
    method: Annotated[str, typer.Option(help="exact|minhash|embedding")] = "minhash",
    threshold: Annotated[
        float | None, typer.Option(help="minhash: Jaccard; embedding: cosine")
    ] = None,
    model: Annotated[str | None, typer.Option(help="embedding: the embedding model")] = None,
    prefer: Annotated[
        str | None, typer.Option(help="keep the member best on this scorer as representative")
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="follow the job until it ends")] = False,
) -> None:
    """Find near-duplicate clusters in a dataset (they replace that method's earlier ones)."""
    from app.datasets.service import get_dataset
    from app.selection.dedup import start_dedup_job

    launch(
        lambda session, send: start_dedup_job(
            session,
            get_dataset(session, dataset),
            method,
            threshold=threshold,
            model=model,
            prefer=prefer,
            send=send,
        ),
        f"dedup {dataset} ({method})",
        wait,
    )


def _quotas(pairs: list[str]) -> dict[str, int] | None:
    quotas = {}
    for pair in pairs:
        group, sep, count = pair.rpartition("=")
        if not sep or not group or not count.isdigit():
            fail(f"--quota takes GROUP=N, got {pair!r}")
        quotas[group] = int(count)
    return quotas or None


@cli.command("select")
def select_(
    dataset: Annotated[str, typer.Option("--dataset")],
    method: Annotated[str, typer.Option("--method", help="threshold|deita|lima-quota|random")],
    into: Annotated[str, typer.Option("--into", help="the collection (created if new)")],
    budget: Annotated[int | None, typer.Option("--budget", help="how many to pick")] = None,
    filters: Annotated[
        list[str] | None, typer.Option("--filter", help="e.g. alpagasus>=4.5 (repeatable)")
    ] = None,
    scorer: Annotated[
        str | None, typer.Option(help="sort by (deita: default deita-evol; lima-quota: best first)")
    ] = None,
    threshold: Annotated[float, typer.Option(help="deita: largest cosine to anything kept")] = 0.9,
    embedding_model: Annotated[str | None, typer.Option("--embedding-model")] = None,
    group_by: Annotated[
        str, typer.Option("--group-by", help="lima-quota: source|category")
    ] = "source",
    tau: Annotated[float, typer.Option(help="lima-quota: temperature across groups")] = 3.0,
    quota: Annotated[
        list[str] | None, typer.Option("--quota", help="lima-quota: GROUP=N (repeatable)")
    ] = None,
    one_per_cluster: Annotated[
        str | None, typer.Option("--one-per-cluster", help="exact|minhash|embedding")
    ] = None,
    seed: Annotated[int, typer.Option()] = 0,
    name: Annotated[str | None, typer.Option("--name", help="save the recipe by this name")] = None,
    target_size: Annotated[int, typer.Option("--target-size", help="for a new collection")] = 1000,
    preview: Annotated[
        bool, typer.Option("--preview", help="show what it picks; write nothing")
    ] = False,
    wait: Annotated[bool, typer.Option("--wait", help="follow the job until it ends")] = False,
) -> None:
    """Pick examples of a dataset with a recipe and add them to a collection."""
    from app.collections.service import create_collection, get_collection
    from app.core.errors import NotFound
    from app.selection.service import SelectionSpec, save_selection, start_select_job
    from app.selection.service import preview as preview_selection

    spec = SelectionSpec(
        dataset=dataset,
        method=method,
        budget=budget,
        filters=filters or [],
        scorer=scorer,
        threshold=threshold,
        embedding_model=embedding_model,
        group_by=group_by,
        tau=tau,
        quotas=_quotas(quota or []),
        one_per_cluster=one_per_cluster,
        seed=seed,
    )
    if preview:
        with user_errors(), transaction() as session:
            shown = preview_selection(session, spec)
        groups = ", ".join(
            f"{g or '(none)'} {n:,}" for g, n in list(shown["groups_after"].items())[:8]
        )
        out.print(
            f"{method}: {shown['selected']:,} of {shown['pool']:,} candidates; by {group_by}: {groups}"
        )
        if shown.get("scores_after"):
            before, after = shown["scores_before"], shown["scores_after"]
            out.print(
                f"{shown['scorer']}: mean {before['mean']:.3f} in the pool, {after['mean']:.3f} selected"
            )
        return

    def start(session: Session, send: bool) -> Job:
        try:
            collection = get_collection(session, into)
        except NotFound:
            collection = create_collection(session, into, target_size=target_size)
        if name:
            save_selection(session, name, spec)
        return start_select_job(session, collection, spec, name=name, send=send)

    launch(start, f"select {method} into {into}", wait)


@cli.command("snapshot")
def snapshot(
    collection: Annotated[str, typer.Option("--collection")],
    note: Annotated[str, typer.Option(help="what this snapshot is for")] = "",
) -> None:
    """Freeze a collection as an immutable snapshot (the same content gives the same one)."""
    from app.collections.service import create_snapshot, get_collection

    with user_errors(), transaction() as session:
        frozen, created = create_snapshot(session, get_collection(session, collection), note=note)
        line = f"snapshot {frozen.id} of {collection}: {frozen.example_count:,} examples, digest {frozen.digest[:16]}"
    out.print(line if created else f"{line} (unchanged: the existing snapshot)")


@cli.command("worker")
def worker(
    queues: Annotated[str, typer.Option(help="comma-separated: io,cpu,gpu")] = "io,cpu,gpu",
    concurrency: Annotated[int, typer.Option(help="tasks at once")] = 2,
    beat: Annotated[bool, typer.Option("--beat", help="also run the periodic sweeper")] = False,
) -> None:
    """Run a Celery worker (production: one per queue kind, on any machine)."""
    unknown = set(queues.split(",")) - {"io", "cpu", "gpu"}
    if unknown:
        fail(f"unknown queue(s): {', '.join(sorted(unknown))}")
    if beat and "cpu" not in queues.split(","):
        fail("--beat needs the cpu queue: the sweeper it schedules runs there")
    get_settings().data_dir.mkdir(parents=True, exist_ok=True)  # beat keeps its schedule there
    os.execv(sys.executable, worker_command(queues, beat, concurrency))


@cli.command("serve")
def serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    embedded_worker: Annotated[
        bool, typer.Option("--worker/--no-worker", help="start a worker too")
    ] = True,
) -> None:
    """Run the studio; with the embedded default it starts its own worker."""
    import uvicorn

    from app.core.db import database_url

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with user_errors():
        url = database_url()  # starts the embedded PostgreSQL server when none is configured
    if settings.embedded or not settings.database_url:
        upgrade_database()
    child = None
    if embedded_worker and settings.embedded:
        # The worker joins this process's database server instead of starting its own, and runs
        # a few tasks at once so that a second job runs beside a long one.
        child = subprocess.Popen(
            worker_command("io,cpu,gpu", True, EMBEDDED_CONCURRENCY),
            env=os.environ | {"SIFT_DATABASE_URL": url},
            preexec_fn=_die_with_parent,
        )
        pid_file().write_text(str(os.getpid()))
    # uvicorn re-raises SIGTERM after its graceful shutdown; make that an ordinary exit so the
    # worker is stopped below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    out.print(f"Sift is at http://{host}:{port}")
    try:
        uvicorn.run("app.main:create_app", factory=True, host=host, port=port, log_level="info")
    finally:
        if child is not None:
            child.terminate()
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
            pid_file().unlink(missing_ok=True)


# Tasks the embedded worker runs at once (`sift serve` with no Redis).
EMBEDDED_CONCURRENCY = 3


def _die_with_parent() -> None:
    """In the worker child: the kernel stops it if `sift serve` dies without cleaning up."""
    if sys.platform == "linux":
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def main() -> None:
    """Entry point of the `sift` command; a bad setting is one error line, not a traceback."""
    from pydantic import ValidationError

    try:
        get_settings()
    except ValidationError as exc:
        reasons = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        err.print(f"[bold red]error:[/] settings: {reasons}", highlight=False)
        raise SystemExit(1) from None
    cli()


def _add_domain_commands() -> None:
    """The commands that live with their domains; they import the helpers above."""
    from app.evaluation.commands import eval_cli
    from app.generation.commands import generate_cli
    from app.training.commands import train

    cli.add_typer(generate_cli, name="generate")
    cli.add_typer(eval_cli, name="eval")
    cli.command("train")(train)


if __name__ == "__main__":
    # `python -m app.cli`: run the module imported as `app.cli`, the one the domains import.
    from app.cli import main as run

    run()
else:
    _add_domain_commands()
