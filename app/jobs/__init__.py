"""The jobs people see: listing, cancelling and resuming them."""

from app.platform.domain import Domain

DOMAIN = Domain(
    "jobs",
    api="app.jobs.routes:router",
    pages="app.jobs.pages:router",
    commands="app.jobs.commands:commands",
)
