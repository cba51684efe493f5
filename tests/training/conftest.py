"""Training tests: real AlpaGasus records frozen in a snapshot, and a tiny Llama built here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from app.collections.service import add_items, create_collection, create_snapshot
from app.datasets.importer import import_file
from app.datasets.records import join_prompt
from app.models import Example, Snapshot
from app.training.presets import TrainingParams, build_params
from tests.factories import make_dataset, unique, write_json
from tests.training.tiny_model import build_tiny_base, short_records


@pytest.fixture(scope="session")
def records(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """Eight short real records of AlpaGasus' random 9k (small enough to memorise)."""
    from tests.conftest import DATA

    if not DATA.is_dir():
        pytest.skip(f"the shared data folder is absent ({DATA})")
    return short_records(DATA)


@pytest.fixture(scope="session")
def base_model(records: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama whose tokenizer knows the records' words (no chat template)."""
    texts = [join_prompt(r["instruction"], r["input"]) + " " + r["output"] for r in records]
    return build_tiny_base(tmp_path_factory.mktemp("tiny-base"), texts)


def make_snapshot(session: Session, records: list[dict[str, Any]], folder: Path) -> Snapshot:
    """Import the records into a dataset, put them all in a collection and freeze it."""
    dataset = make_dataset(session)
    import_file(session, dataset, write_json(folder / f"{unique('records')}.json", records))
    ids = [e.id for e in session.query(Example).filter_by(dataset_id=dataset.id).order_by("id")]
    collection = create_collection(session, unique("set"), target_size=len(ids))
    add_items(session, collection, ids)
    snapshot, _ = create_snapshot(session, collection)
    return snapshot


def quick_params(**overrides: Any) -> TrainingParams:
    """Settings that memorise eight short records in a few dozen CPU steps."""
    values: dict[str, Any] = {
        "method": "full",
        "template": "alpaca",
        "max_steps": 24,
        "batch_size": 4,
        "micro_batch_size": 4,
        "learning_rate": 1e-2,
        "scheduler": "constant",
        "warmup_ratio": 0.0,
        "max_seq_length": 128,
        "save_steps": 8,
    }
    return build_params("alpaca", **(values | overrides))
