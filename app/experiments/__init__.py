"""Experiments: every recipe trained and judged the same way, side by side."""

from app.platform.domain import Domain

DOMAIN = Domain(
    "experiments",
    api="app.experiments.routes:router",
    pages="app.experiments.pages:router",
    commands="app.experiments.commands:commands",
    tasks="app.experiments.tasks",
)
