"""The `sift` command: the database and process commands, and every domain's commands."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from app.entrypoints.domains import DOMAINS, TASK_MODULES
from app.entrypoints.processes import EMBEDDED_CONCURRENCY, die_with_parent, worker_command
from app.platform.cli.console import err, fail, out, progress_bar, user_errors
from app.platform.cli.jobs import pid_file
from app.platform.config import get_settings
from app.platform.domain import load
from app.platform.errors import SiftError
from app.platform.jobs.registry import declare_task_modules
from app.platform.migrate import upgrade_database

cli = typer.Typer(
    help="Sift: curate instruction-tuning data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_cli = typer.Typer(help="Database schema.", no_args_is_help=True)
cli.add_typer(db_cli, name="db")


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

    from app.platform.sqlite_import import ImportProgress, import_sqlite
    from app.platform.sqlite_source import check_sqlite_file

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

    from app.platform.db import database_url

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
            preexec_fn=die_with_parent,
        )
        pid_file().write_text(str(os.getpid()))
    # uvicorn re-raises SIGTERM after its graceful shutdown; make that an ordinary exit so the
    # worker is stopped below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    out.print(f"Sift is at http://{host}:{port}")
    try:
        uvicorn.run(
            "app.entrypoints.web:create_app",
            factory=True,
            host=host,
            port=port,
            log_level="info",
            # uvicorn believes X-Forwarded-For from loopback by default; the app itself does
            # that, and only for SIFT_TRUSTED_PROXIES.
            proxy_headers=False,
        )
    finally:
        if child is not None:
            child.terminate()
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
            pid_file().unlink(missing_ok=True)


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


declare_task_modules(TASK_MODULES)  # a job run in this process may be of any domain's kind
for domain in DOMAINS:
    if domain.commands:
        cli.add_typer(load(domain.commands))

if __name__ == "__main__":
    main()
