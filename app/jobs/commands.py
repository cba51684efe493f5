"""`sift jobs`: list, watch, cancel and resume jobs."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.table import Table

from app.platform.cli.console import out, user_errors
from app.platform.cli.jobs import launch
from app.platform.db import transaction

commands = typer.Typer()
jobs_cli = typer.Typer(help="Background jobs (with no sub-command: list them).")
commands.add_typer(jobs_cli, name="jobs")


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


@jobs_cli.command("show")
def jobs_show(job_id: int) -> None:
    """One job: its state, progress, counts and budget, and its Batch API batches."""
    from app.jobs.service import get_job
    from app.platform.llm.batch_status import job_batches, summary_line

    with user_errors(), transaction() as session:
        job = get_job(session, job_id)
        batches = job_batches(session, [job_id]).get(job_id, [])
        progress = f"{job.done:,}" + (f" of {job.total:,}" if job.total is not None else "")
        lines = [f"job {job.id}: {job.kind} {job.state}, {progress}"]
        if job.counts:
            lines.append("counts: " + " ".join(f"{k}={v}" for k, v in job.counts.items()))
        if job.budget_usd is not None:
            lines.append(f"budget: ${job.budget_usd:.4f}, spent ${job.spent_usd:.4f}")
        if job.error:
            lines.append(f"error: {job.error}")
    for line in lines:
        out.print(line, highlight=False, markup=False)
    if not batches:
        return
    out.print(summary_line(batches), highlight=False, markup=False)
    table = Table("batch", "endpoint", "status", "answered", "failed", "cost", "id", box=None)
    for view in batches:
        table.add_row(
            str(view.id),
            view.endpoint,
            view.status,
            f"{view.completed:,}/{view.total:,}",
            f"{view.failed:,}",
            f"${view.cost_usd:.4f}" if view.collected else f"(${view.reserved_usd:.4f} held)",
            view.batch_id or "(submitting)",
        )
    out.print(table)


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
        lambda session: resume_job(session, job_id, budget_usd=budget),
        lambda job: f"{job.kind} (job {job.id})",
        wait,
    )
