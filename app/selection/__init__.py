"""Picking a small, good and diverse set: embeddings, near-duplicates, selectors."""

from app.platform.domain import Domain

DOMAIN = Domain(
    "selection",
    api="app.selection.routes:router",
    commands="app.selection.commands:commands",
    tasks="app.selection.tasks",
)
