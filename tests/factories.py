"""Factories: build the rows and files a test needs, instead of fixture files."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from app.datasets.service import create_dataset
from app.models import Dataset, Example, User
from app.users.service import create_token, create_user

_counter = itertools.count(1)


def unique(prefix: str) -> str:
    """A name no other factory call has given."""
    return f"{prefix}-{next(_counter)}"


def make_user(session: Session, role: str = "annotator", password: str = "correct horse") -> User:
    """A user with a known password."""
    return create_user(session, unique(role), role, password)


def make_token(session: Session, role: str = "lead") -> tuple[User, dict[str, str]]:
    """A user of `role` and the Authorization header of a fresh token of theirs."""
    user = make_user(session, role)
    return user, {"authorization": f"Bearer {create_token(session, user)}"}


def make_dataset(session: Session, name: str | None = None) -> Dataset:
    """An empty dataset."""
    return create_dataset(session, name or unique("dataset"))


def alpaca_record(i: int, **extra: Any) -> dict[str, Any]:
    """A distinct, valid Alpaca record."""
    return {
        "instruction": f"Say the number {i}.",
        "input": "",
        "output": f"The number is {i}.",
        **extra,
    }


def write_json(path: Path, records: list[Any]) -> Path:
    """A JSON-list file of records."""
    path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    return path


def write_jsonl(path: Path, records: list[Any]) -> Path:
    """A JSON-lines file of records."""
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8"
    )
    return path


def make_example(
    session: Session,
    dataset: Dataset,
    i: int | None = None,
    record: dict[str, Any] | None = None,
    **fields: Any,
) -> Example:
    """One imported-looking Alpaca example; `record` overrides fields of the Alpaca record."""
    from app.datasets.service import parse_alpaca

    draft = parse_alpaca(alpaca_record(i if i is not None else next(_counter)) | (record or {}))
    values = {
        "dataset_id": dataset.id,
        "messages": draft.messages,
        "instruction": draft.instruction,
        "input": draft.input,
        "output": draft.output,
        "content_hash": draft.content_hash,
        "source_format": "alpaca",
        "source_keys": draft.source_keys,
        "meta": {},
    }
    values.update(fields)
    example = Example(**values)
    session.add(example)
    session.flush()
    return example
