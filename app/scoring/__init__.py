"""Putting a number on every example: LLM raters, Deita scorers, LIMA heuristics."""

from app.platform.domain import Domain

DOMAIN = Domain(
    "scoring",
    api="app.scoring.routes:router",
    commands="app.scoring.commands:commands",
    tasks="app.scoring.tasks",
)
