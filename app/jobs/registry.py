"""Imports every domain module that registers job handlers."""

from __future__ import annotations

import importlib

HANDLER_MODULES = (
    "app.datasets.tasks",
    "app.scoring.tasks",
    "app.collections.tasks",
    "app.selection.tasks",
    "app.generation.tasks",
    "app.training.tasks",
    "app.evaluation.tasks",
)


def load_handlers() -> None:
    """Make every job kind known to the runner."""
    for module in HANDLER_MODULES:
        importlib.import_module(module)
