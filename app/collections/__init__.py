"""Collections being assembled, and their frozen snapshots."""

from app.platform.domain import Domain

DOMAIN = Domain(
    "collections",
    api="app.collections.routes:router",
    pages="app.collections.pages:router",
    commands="app.collections.commands:commands",
    tasks="app.collections.tasks",
)
