"""Pairwise evaluations: test sets, answers from two models, a judge in both answer orders."""

from app.platform.domain import Domain

DOMAIN = Domain(
    "evaluation",
    api="app.evaluation.routes:router",
    pages="app.evaluation.pages:router",
    commands="app.evaluation.commands:commands",
    tasks="app.evaluation.tasks",
)
