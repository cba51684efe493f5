"""The annotators' queue: accept, edit or write answers, with their history."""

from app.platform.domain import Domain

DOMAIN = Domain(
    "review",
    api="app.review.routes:router",
    pages="app.review.pages:router",
    commands="app.review.commands:commands",
    tasks="app.review.tasks",
)
