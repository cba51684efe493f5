"""What a generation run starts from: a dataset's examples as tasks, or Self-Instruct's seed
tasks, imported into a dataset of their own on first use."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.datasets.service import get_or_create_dataset, parse_alpaca
from app.generation.store import insert_examples
from app.models import Dataset, Example, User
from app.platform.errors import InvalidInput

# Self-Instruct's 175 seed tasks (Apache-2.0), shipped inside the package: see data/NOTICE.md.
SEED_TASKS = Path(__file__).resolve().parent / "data" / "seed_tasks.jsonl"
SEED_DATASET = "self-instruct-seeds"


def source_tasks(session: Session, dataset_id: int, up_to_id: int, limit: int | None) -> list[Any]:
    """(id, instruction, input, output) of a dataset's single-turn-readable examples, by id."""
    query = (
        select(Example.id, Example.instruction, Example.input, Example.output, Example.messages)
        .where(Example.dataset_id == dataset_id, Example.id <= up_to_id)
        .order_by(Example.id)
    )
    if limit is not None:
        query = query.limit(limit)
    rows = []
    for example_id, instruction, given, output, messages in session.execute(query):
        if instruction is None:
            # A multi-turn example: its first user turn and the answer to it.
            users = [m["content"] for m in messages if m["role"] == "user"]
            answers = [m["content"] for m in messages if m["role"] == "assistant"]
            instruction, given, output = (
                users[0] if users else "",
                "",
                answers[0] if answers else "",
            )
        rows.append((example_id, instruction, given or "", output or ""))
    return rows


def last_id(session: Session, dataset: Dataset) -> int:
    """The newest example id of a dataset (0 when empty): later examples are not a run's inputs."""
    return session.scalar(select(func.max(Example.id)).where(Example.dataset_id == dataset.id)) or 0


def load_seed_tasks(path: Path) -> list[dict[str, Any]]:
    """Self-Instruct's seed-task file as Alpaca records (the first instance of each task)."""
    records = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                task = json.loads(line)
                instance = task["instances"][0]
                records.append(
                    {
                        "instruction": task["instruction"],
                        "input": instance["input"],
                        "output": instance["output"],
                    }
                    | ({"id": task["id"]} if "id" in task else {})
                )
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                raise InvalidInput(f"{path}: line {number} is not a seed task ({exc})") from exc
    return records


def seed_dataset(session: Session, path: Path | None = None, user: User | None = None) -> Dataset:
    """The dataset of Self-Instruct's seed tasks, imported from the seed-task file on first use."""
    path = path or SEED_TASKS
    dataset = get_or_create_dataset(session, SEED_DATASET, user)
    if session.scalar(select(func.count()).where(Example.dataset_id == dataset.id)):
        return dataset
    if not path.is_file():
        raise InvalidInput(f"no seed tasks: {path} is missing; name a seed dataset with --from")
    drafts = []
    for record in load_seed_tasks(path):
        draft = parse_alpaca({k: v for k, v in record.items() if k != "id"})
        draft.external_id, draft.source = record.get("id"), "self-instruct/seed"
        drafts.append(draft)
    insert_examples(session, dataset.id, drafts, origin="import")
    return dataset
