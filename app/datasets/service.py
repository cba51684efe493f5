"""Datasets and examples: create, edit with optimistic locking, start an import; and the
domain's public face, re-exporting what other domains use of reading, records, file readers,
exports and the pages' links."""

from __future__ import annotations

import re
import shutil
import uuid
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

# The datasets domain's public API is this module: what it defines, and what it re-exports
# from the domain's other modules (imported `as` their own name below). Other domains import
# only from here.
from app.datasets.downloads import export_download as export_download
from app.datasets.downloads import export_stream as export_stream
from app.datasets.exporter import EXPORT_FORMATS as EXPORT_FORMATS
from app.datasets.exporter import ExportOptions as ExportOptions
from app.datasets.exporter import ExportSource as ExportSource
from app.datasets.parsers import parse_alpaca as parse_alpaca
from app.datasets.parsers import parse_messages
from app.datasets.queries import ExampleFilter as ExampleFilter
from app.datasets.queries import all_datasets as all_datasets
from app.datasets.queries import by_ids as by_ids
from app.datasets.queries import count_examples as count_examples
from app.datasets.queries import filtered_examples as filtered_examples
from app.datasets.queries import get_dataset as get_dataset
from app.datasets.queries import get_example as get_example
from app.datasets.queries import like_pattern as like_pattern
from app.datasets.queries import list_datasets as list_datasets
from app.datasets.queries import list_examples as list_examples
from app.datasets.queries import search_condition as search_condition
from app.datasets.queries import similar_examples as similar_examples
from app.datasets.queries import text_query as text_query
from app.datasets.readers import FileError as FileError
from app.datasets.readers import RecordStream as RecordStream
from app.datasets.readers import detect_container as detect_container
from app.datasets.recent_jobs import any_active as any_active
from app.datasets.records import CONTENT_FIELDS as CONTENT_FIELDS
from app.datasets.records import ExampleDraft as ExampleDraft
from app.datasets.records import RecordError
from app.datasets.records import content_hash as content_hash
from app.datasets.records import join_prompt as join_prompt
from app.datasets.schemas import ExampleOut as ExampleOut
from app.datasets.schemas import example_out as example_out
from app.datasets.urls import dataset_url as dataset_url
from app.models import Dataset, Example, ExampleStatus, Job, Revision, User
from app.platform.config import get_settings
from app.platform.errors import Conflict, InvalidInput, NotFound, PreconditionRequired
from app.platform.jobs.dispatch import create_job

# No "/" so that a name is always one URL path segment.
NAME_PATTERN = re.compile(r"^[^\x00-\x1f\x7f/]{1,200}$")
NOT_NULL = ("messages", "instruction", "output", "status", "meta")
EDITABLE = ("messages", "instruction", "input", "output", "source", "category", "status", "meta")


def create_dataset(
    session: Session, name: str, description: str = "", user: User | None = None
) -> Dataset:
    """A new, empty dataset; the name must be free."""
    name = name.strip()
    if not NAME_PATTERN.match(name):
        raise InvalidInput(
            "a dataset name must be 1 to 200 printable characters without '/'", field="name"
        )
    if session.scalar(select(Dataset.id).where(Dataset.name == name)) is not None:
        raise Conflict(f"a dataset called {name!r} exists already")
    dataset = Dataset(name=name, description=description, created_by_id=user.id if user else None)
    session.add(dataset)
    session.flush()
    return dataset


def get_or_create_dataset(session: Session, name: str, user: User | None = None) -> Dataset:
    """The dataset called `name`, created if it does not exist yet."""
    existing = session.scalar(select(Dataset).where(Dataset.name == name.strip()))
    return existing or create_dataset(session, name, user=user)


def _snapshot(example: Example) -> dict[str, Any]:
    return {name: getattr(example, name) for name in EDITABLE}


def _apply_messages(example: Example, messages: Any) -> None:
    try:
        checked = parse_messages({"messages": messages})
    except RecordError as exc:
        raise InvalidInput(str(exc), field="messages") from exc
    turns = [m for m in checked if m["role"] != "system"]
    example.messages = checked
    if len(turns) != 2:
        example.instruction = example.input = example.output = None
        return
    if example.instruction is None or turns[0]["content"] != join_prompt(
        example.instruction, example.input
    ):
        example.instruction, example.input = turns[0]["content"], None
    example.output = turns[1]["content"]


def _apply_fields(example: Example, changes: dict[str, Any]) -> None:
    for name in ("instruction", "input", "output"):
        if name in changes and changes[name] is not None and not isinstance(changes[name], str):
            raise InvalidInput(f"field '{name}' must be a string", field=name)
    if {"instruction", "input"} & changes.keys() and example.instruction is None:
        raise InvalidInput("this example has several turns: edit its messages instead")
    example.instruction = changes.get("instruction", example.instruction)
    example.input = changes.get("input", example.input)
    example.output = changes.get("output", example.output)
    messages = [dict(m) for m in example.messages]
    users = [i for i, m in enumerate(messages) if m["role"] == "user"]
    assistants = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
    if example.instruction is not None:
        messages[users[-1]]["content"] = join_prompt(example.instruction, example.input)
    if example.output is not None:
        messages[assistants[-1]]["content"] = example.output
    example.messages = messages


def update_example(
    session: Session,
    example_id: int,
    expected_version: int | None,
    changes: dict[str, Any],
    user: User | None,
    reason: str = "",
) -> Example:
    """Apply an edit if `expected_version` is current; write a Revision; 409 when stale."""
    if expected_version is None:
        raise PreconditionRequired("send If-Match: <version> to edit an example")
    example = session.get(Example, example_id, with_for_update={"key_share": True})
    if example is None:
        raise NotFound(f"no example {example_id}")
    if example.version != expected_version:
        raise Conflict(
            f"example {example_id} was changed by someone else (version {example.version})",
            current_version=example.version,
            current=_snapshot(example),
        )
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise InvalidInput(f"these fields cannot be edited: {', '.join(sorted(unknown))}")
    nulls = sorted(name for name in NOT_NULL if name in changes and changes[name] is None)
    if nulls:
        raise InvalidInput(f"these fields cannot be null: {', '.join(nulls)}", field=nulls[0])
    with session.no_autoflush:  # a half-applied edit must not be flushed by the checks below
        before = _snapshot(example)
        _apply(session, example, changes)
        after = _snapshot(example)
    if after == before:
        return example
    session.flush()  # bumps the version; a concurrent writer gets a stale-data error
    session.add(
        Revision(
            example_id=example.id,
            user_id=user.id if user else None,
            version=example.version,
            reason=reason,
            before=before,
            after=after,
        )
    )
    return example


def _apply(session: Session, example: Example, changes: dict[str, Any]) -> None:
    """Apply an edit to an example in memory, keeping its content hash unique."""
    if "messages" in changes:
        _apply_messages(example, changes["messages"])
    elif {"instruction", "input", "output"} & changes.keys():
        _apply_fields(example, changes)
    for name in ("source", "category", "meta"):
        if name in changes:
            setattr(example, name, changes[name])
    if "status" in changes:
        if changes["status"] not in {s.value for s in ExampleStatus}:
            raise InvalidInput(f"unknown status {changes['status']!r}", field="status")
        example.status = changes["status"]
    new_hash = content_hash(example.messages)
    if new_hash != example.content_hash:
        clash = session.scalar(
            select(Example.id).where(
                Example.dataset_id == example.dataset_id,
                Example.content_hash == new_hash,
                Example.id != example.id,
            )
        )
        if clash is not None:
            raise Conflict(f"example {clash} already has this content", duplicate_of=clash)
        example.content_hash = new_hash


def save_upload(stream: BinaryIO, filename: str | None) -> Path:
    """Store an uploaded file under the uploads folder, for its import job to read."""
    uploads = get_settings().uploads_dir
    uploads.mkdir(parents=True, exist_ok=True)
    suffix = "".join(c for c in (filename or "").rsplit(".", 1)[-1][:10] if c.isalnum())
    path = uploads / f"{uuid.uuid4().hex}.{suffix or 'dat'}"
    with path.open("wb") as out:
        shutil.copyfileobj(stream, out, length=1 << 20)
    return path


def start_import_job(
    session: Session,
    dataset: Dataset,
    path: Path,
    *,
    fmt: str = "auto",
    skip_invalid: bool = False,
    source: str | None = None,
    mapping: dict[str, str] | None = None,
    user: User | None = None,
    split: str | None = None,
) -> Job:
    """A background import of a file already on disk (an upload, or a path on the server)."""
    params = {
        "path": str(path),
        "format": fmt,
        "skip_invalid": skip_invalid,
        "source": source,
        "mapping": mapping or {},
    } | ({"split": split} if split else {})
    return create_job(session, "import", params, queue="cpu", user=user, dataset_id=dataset.id)
