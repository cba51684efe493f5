"""Hugging Face datasets: import a split of a save_to_disk folder or any local file datasets
reads (real AlpaGasus Dolly records), and export a snapshot as a DatasetDict folder that
datasets.load_from_disk opens with the same rows as the JSONL export."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from app.collections.service import add_items, create_collection, create_snapshot
from app.datasets.exporter import ExportOptions, ExportSource, export_to_file
from app.datasets.hf import arrow_rows
from app.datasets.importer import import_file
from app.entrypoints.cli import cli
from app.models import Dataset, Example
from app.platform.db import transaction
from app.platform.errors import InvalidInput
from tests.factories import make_dataset

FIELDS = ("instruction", "input", "output", "category")


@pytest.fixture
def dolly(data_dir: Path) -> list[dict[str, str]]:
    """The real Dolly 3k records AlpaGasus kept."""
    return json.loads((data_dir / "alpagasus" / "dolly_3k.json").read_text(encoding="utf-8"))


def _rows(session: Session, dataset: Dataset) -> list[tuple]:
    query = select(*(getattr(Example, f) for f in FIELDS)).where(Example.dataset_id == dataset.id)
    return [tuple(r) for r in session.execute(query.order_by(Example.id))]


def _expected(records: list[dict[str, str]]) -> list[tuple]:
    return [tuple(r[f] for f in FIELDS) for r in records]


def test_a_split_of_a_saved_dataset_dict_imports(
    session: Session, dolly: list[dict[str, str]], tmp_path: Path
) -> None:
    table = datasets.Dataset.from_list(dolly[:200])
    folder = tmp_path / "dolly-dict"
    datasets.DatasetDict({"train": table.select(range(150)), "test": table.select(range(150, 200))}).save_to_disk(str(folder))  # fmt: skip
    test = make_dataset(session)
    summary = import_file(session, test, folder, split="test")
    assert (summary.new, summary.format) == (50, "alpaca")
    assert _rows(session, test) == _expected(dolly[150:200])
    train = make_dataset(session)
    assert import_file(session, train, folder).new == 150  # auto-detected; train by default
    assert _rows(session, train) == _expected(dolly[:150])
    with pytest.raises(InvalidInput, match="no split 'validation'"):
        import_file(session, make_dataset(session), folder, fmt="hf", split="validation")
    only_test = tmp_path / "only-splits"
    datasets.DatasetDict({"a": table.select(range(2)), "b": table.select(range(2, 4))}).save_to_disk(str(only_test))  # fmt: skip
    with pytest.raises(InvalidInput, match="has the splits a, b; choose one"):
        import_file(session, make_dataset(session), only_test)
    single = tmp_path / "dolly-dataset"
    table.select(range(10)).save_to_disk(str(single))
    one = make_dataset(session)
    assert import_file(session, one, single, fmt="hf").new == 10
    with pytest.raises(InvalidInput, match="no such file"):
        import_file(session, make_dataset(session), tmp_path)  # a folder, but not a saved one


def test_any_file_datasets_reads_imports_as_the_native_reader_does(
    session: Session, dolly: list[dict[str, str]], data_dir: Path, tmp_path: Path
) -> None:
    source = data_dir / "alpagasus" / "dolly_3k.json"
    native, through_hf = make_dataset(session), make_dataset(session)
    read_natively = import_file(session, native, source)
    read_by_datasets = import_file(session, through_hf, source, fmt="hf")
    # The file repeats two records: both readers skip the same repeats.
    assert (read_by_datasets.read, read_by_datasets.new) == (len(dolly), len(dolly) - 2)
    assert read_by_datasets.new == read_natively.new
    assert _rows(session, through_hf) == _rows(session, native)
    arrow = tmp_path / "dolly.arrow"
    table = datasets.Dataset.from_list(dolly[:30])
    table.to_parquet(str(tmp_path / "dolly.parquet"))
    # An Arrow stream file, as datasets' own cache files are.
    import pyarrow as pa

    with pa.OSFile(str(arrow), "wb") as sink, pa.ipc.new_stream(sink, table.data.table.schema) as writer:  # fmt: skip
        writer.write_table(table.data.table)
    for path in (arrow, tmp_path / "dolly.parquet"):
        target = make_dataset(session)
        assert import_file(session, target, path, fmt="hf").new == 30, path
        assert _rows(session, target) == _expected(dolly[:30])
    notes = tmp_path / "notes.md"
    notes.write_text("# not data")
    with pytest.raises(InvalidInput, match="datasets reads no such file"):
        import_file(session, make_dataset(session), notes, fmt="hf")


def test_a_snapshot_exports_as_a_dataset_dict_folder(
    embedded: Engine, dolly: list[dict[str, str]], tmp_path: Path
) -> None:
    pool = tmp_path / "pool.json"
    pool.write_text(json.dumps(dolly[:40]))
    with transaction() as session:
        dataset = make_dataset(session)
        import_file(session, dataset, pool)
        query = select(Example.id).where(Example.dataset_id == dataset.id).order_by(Example.id)
        ids = list(session.scalars(query))
        collection = create_collection(session, "hf-out", target_size=40)
        add_items(session, collection, ids[::2])
        snapshot, _ = create_snapshot(session, collection)
        source = ExportSource("snapshot", snapshot.id)
        jsonl = tmp_path / "snapshot.jsonl"
        export_to_file(session, source, ExportOptions("jsonl"), jsonl)
        digest = snapshot.digest[:16]
    out = tmp_path / "exports" / "snapshot-hf"
    done = CliRunner().invoke(cli, ["export", "--snapshot", digest, "--format", "hf", "--out", str(out)])  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "exported 20 records as hf" in done.output
    loaded = datasets.load_from_disk(str(out))
    assert isinstance(loaded, datasets.DatasetDict) and list(loaded) == ["train"]
    exported = [json.loads(line) for line in jsonl.read_text(encoding="utf-8").splitlines()]
    assert loaded["train"].to_list() == list(arrow_rows(exported))
    assert sorted(e["output"] for e in exported) == sorted(r["output"] for r in dolly[:40:2])
    assert [p.name for p in out.parent.iterdir()] == ["snapshot-hf"]  # no partial folder left
    # The folder imports back: the same content, nothing new the second time.
    back = CliRunner().invoke(cli, ["import", str(out), "--dataset", "back"])
    assert back.exit_code == 0, back.output
    assert "20 new" in back.output
    with transaction() as session:
        hashes = set(session.scalars(select(Example.content_hash).join(Dataset).where(Dataset.name == "back")))  # fmt: skip
    assert hashes == {e["content_hash"] for e in exported}
    again = CliRunner().invoke(cli, ["export", "--snapshot", digest, "--format", "hf", "--out", str(out)])  # fmt: skip
    assert again.exit_code == 0 and datasets.load_from_disk(str(out))["train"].num_rows == 20
    clash = tmp_path / "a-file"
    clash.write_text("x")
    refused = CliRunner().invoke(cli, ["export", "--snapshot", digest, "--format", "hf", "--out", str(clash)])  # fmt: skip
    assert refused.exit_code == 1 and "is not a saved dataset" in refused.output


def test_push_to_hub_refuses_cleanly_without_a_token_or_a_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pushing needs the network and a Hub account, neither of which a test has: what is
    # checked here is that it is refused in one line before anything is read or written.
    monkeypatch.delenv("HF_TOKEN", raising=False)
    out = tmp_path / "never-written"
    cases = {
        ("--push-to-hub", "me/pool"): "set HF_TOKEN",
        ("--push-to-hub", "no-namespace"): "is not a Hub dataset name",
        ("--push-to-hub", "me/pool", "--format", "parquet"): "use --format hf",
    }
    for args, said in cases.items():
        refused = CliRunner().invoke(cli, ["export", "--snapshot", "1", *args, "--out", str(out)])
        assert refused.exit_code == 1, refused.output
        assert said in refused.output and "Traceback" not in refused.output
    assert not out.exists()
    missing = CliRunner().invoke(cli, ["export", "--snapshot", "1"])
    assert missing.exit_code == 1 and "--out" in missing.output
