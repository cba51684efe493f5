"""What a domain adds to Sift, declared once in its package (`DOMAIN` in its `__init__.py`).

Each part is named by its import path and imported only by the entry point that needs it: the
web app imports routers, the command line its commands, the worker its tasks. So `sift jobs`
loads no web code, and a domain is one folder plus one line in `app.entrypoints.domains`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Domain:
    """A domain's parts, each "module:attribute" (tasks: a module whose import registers job
    kinds); None where the domain has no such part."""

    name: str
    api: str | None = None
    pages: str | None = None
    commands: str | None = None
    tasks: str | None = None


def load(reference: str) -> Any:
    """The object a "module:attribute" reference names."""
    module, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module), attribute)
