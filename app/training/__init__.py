"""Fine-tune runs on frozen snapshots: LoRA or full SFT with transformers, peft and TRL."""

from app.platform.domain import Domain

DOMAIN = Domain(
    "training",
    api="app.training.routes:router",
    pages="app.training.pages:router",
    commands="app.training.commands:commands",
    tasks="app.training.tasks",
)
