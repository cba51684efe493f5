"""Pools of candidate examples: import, browse, edit, export."""

from app.platform.domain import Domain

DOMAIN = Domain(
    "datasets",
    api="app.datasets.routes:router",
    pages="app.datasets.pages:router",
    commands="app.datasets.commands:commands",
    tasks="app.datasets.tasks",
)
