"""Console output of commands: one error line instead of a traceback, progress bars, counts."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

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

from app.platform.errors import SiftError

out = Console()
err = Console(stderr=True)

# The counts that say what a job did come first; the rest (calls, tokens, cost) after them in
# name order. PostgreSQL's JSONB keeps no key order, so the order is chosen here.
HEADLINE_COUNTS = (
    "generated", "new", "added", "embedded", "scored", "wins", "ties", "losses", "clusters",
    "duplicates", "invalid", "parse_errors", "unreadable", "failed_prompts", "failed",
)  # fmt: skip


def fail(message: str) -> NoReturn:
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
