"""Growing new examples (Self-Instruct) and evolving existing ones (Evol-Instruct)."""

from app.platform.domain import Domain

DOMAIN = Domain(
    "generation",
    api="app.generation.routes:router",
    pages="app.generation.pages:router",
    commands="app.generation.commands:commands",
    tasks="app.generation.tasks",
)
