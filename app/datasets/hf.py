"""Hugging Face `datasets`: read a folder written by `Dataset.save_to_disk` or
`DatasetDict.save_to_disk` (one split of it) or any local file `datasets` reads, and write an
export as a `DatasetDict` folder that `datasets.load_from_disk` opens. Offline: nothing is
downloaded, and a file's Arrow cache lives in a temporary folder, never in ~/.cache."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from app.platform.errors import InvalidInput

# `datasets`' packaged builders for local files, by extension.
BUILDERS = {
    ".json": "json", ".jsonl": "json", ".csv": "csv", ".tsv": "csv", ".parquet": "parquet",
    ".arrow": "arrow", ".txt": "text",
}  # fmt: skip
SPLIT = "train"  # the one split of an export, and the default split read


# A Hub dataset repository: "namespace/name".
_HUB_REPO = re.compile(r"[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}")


def hub_target(repo: str) -> tuple[str, str]:
    """(repo, token) for `--push-to-hub REPO`, checked before anything is written: a
    "namespace/name" and a token in HF_TOKEN."""
    if not _HUB_REPO.fullmatch(repo) or ".." in repo:
        raise InvalidInput(
            f"--push-to-hub: {repo!r} is not a Hub dataset name: use NAMESPACE/NAME",
            field="push_to_hub",
        )
    token = os.environ.get("HF_TOKEN", "").strip()
    if not token:
        raise InvalidInput(
            "--push-to-hub needs a Hugging Face token with write access: set HF_TOKEN "
            "(https://huggingface.co/settings/tokens)",
            field="push_to_hub",
        )
    # Pushing needs the network, which Sift's reading and writing of datasets never use.
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ[name] = "0"
    return repo, token


def push_folder(folder: Path, repo: str, token: str, *, private: bool) -> str:
    """Upload a DatasetDict folder to the Hugging Face Hub as the dataset `repo` (created if
    missing) with `datasets`' own push_to_hub; the dataset's URL."""
    datasets = _offline()  # online by now: hub_target cleared the offline switches
    datasets.config.HF_HUB_OFFLINE = datasets.config.HF_DATASETS_OFFLINE = False
    loaded = datasets.load_from_disk(str(folder))
    try:
        loaded.push_to_hub(repo, token=token, private=private)
    except Exception as exc:  # the Hub's and the network's errors, as one line
        raise InvalidInput(f"--push-to-hub {repo}: {type(exc).__name__}: {exc}") from exc
    return f"https://huggingface.co/datasets/{repo}"


def _offline() -> Any:
    """The `datasets` module, told never to reach the network."""
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import datasets
    except ImportError:  # pragma: no cover - the hf extra is part of `make install`
        raise InvalidInput(
            "Hugging Face datasets need the `datasets` package: pip install 'sift[hf]'"
        ) from None
    return datasets


def is_saved_dataset(path: Path) -> bool:
    """True for a folder written by Dataset.save_to_disk or DatasetDict.save_to_disk."""
    return path.is_dir() and (
        (path / "dataset_dict.json").is_file() or (path / "state.json").is_file()
    )


def rows(path: Path, split: str | None) -> Iterator[tuple[int, int, dict[str, Any]]]:
    """(row number, rows in all, row) of the chosen split of a saved folder or local file."""
    datasets = _offline()
    with tempfile.TemporaryDirectory(prefix="sift-hf-") as cache:
        table = _open(datasets, path, split, cache)
        total = len(table)
        for number, row in enumerate(table, 1):
            yield number, total, _plain(row)


def _open(datasets: Any, path: Path, split: str | None, cache: str) -> Any:
    if path.is_dir():
        if not is_saved_dataset(path):
            raise InvalidInput(f"{path.name} is not a folder written by save_to_disk")
        loaded = datasets.load_from_disk(str(path))
        if isinstance(loaded, datasets.DatasetDict):
            return _split(loaded, split, path)
        if split not in (None, SPLIT):
            raise InvalidInput(f"--split: {path.name} holds one Dataset, with no splits")
        return loaded
    builder = BUILDERS.get(path.suffix.lower())
    if builder is None:
        known = ", ".join(sorted(BUILDERS))
        raise InvalidInput(f"{path.name}: datasets reads no such file here (it reads {known})")
    options: dict[str, Any] = {"delimiter": "\t"} if path.suffix.lower() == ".tsv" else {}
    try:
        loaded = datasets.load_dataset(
            builder, data_files={SPLIT: str(path)}, cache_dir=cache, **options
        )
    except Exception as exc:  # datasets raises many kinds for a file it cannot read
        raise InvalidInput(f"{path.name}: datasets cannot read it ({exc})") from exc
    return _split(loaded, split, path)


def _split(loaded: Any, split: str | None, path: Path) -> Any:
    names = list(loaded)
    if split is None:
        if SPLIT in names or len(names) == 1:
            return loaded[SPLIT if SPLIT in names else names[0]]
        raise InvalidInput(f"--split: {path.name} has the splits {', '.join(names)}; choose one")
    if split not in names:
        raise InvalidInput(
            f"--split: {path.name} has no split {split!r} (it has {', '.join(names)})"
        )
    return loaded[split]


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """A row as the parsers read records: Sift's own `meta`, kept as JSON text, back as an object."""
    meta = row.get("meta")
    if isinstance(meta, str) and "messages" in row:
        # Not JSON: left as text, which the parser then names as the field at fault.
        with contextlib.suppress(ValueError):
            row["meta"] = json.loads(meta)
    return row


def arrow_rows(records: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Export records as Arrow holds them: `meta` (free-form, differently shaped on each
    example) and `answers` (shaped by each collection's questions) as JSON text, as the
    Parquet export writes them; the rest unchanged."""
    for record in records:
        for name in ("meta", "answers"):
            if name in record and not isinstance(record[name], str):
                record = {**record, name: json.dumps(record[name], ensure_ascii=False)}
        yield record


def write_dataset_dict(records: Iterable[dict[str, Any]], out: Path) -> int:
    """Write the records as a DatasetDict folder with one `train` split; the folder appears
    (or replaces the one there) only when complete. Returns the number of rows."""
    datasets = _offline()
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists() and not is_saved_dataset(out):
        raise InvalidInput(f"--out: {out} exists and is not a saved dataset; choose another path")
    table = datasets.Dataset.from_list(list(arrow_rows(records)))
    work = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".part"))
    try:
        datasets.DatasetDict({SPLIT: table}).save_to_disk(str(work / "dataset"))
        if out.exists():
            shutil.rmtree(out)
        (work / "dataset").rename(out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return len(table)
