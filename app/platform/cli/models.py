"""Local models named on the command line: a GGUF file is converted before the job starts, so
that the user sees it happen (once; later uses find the converted folder)."""

from __future__ import annotations

from pathlib import Path

from app.platform.cli.console import out, user_errors
from app.platform.local_models import is_gguf, model_folder


def prepare_local_model(path: str | Path | None) -> None:
    """Convert a GGUF file now, saying so in one line; nothing for a folder or no model."""
    if path is not None and is_gguf(path):
        with user_errors():
            model_folder(path, announce=out.print)
