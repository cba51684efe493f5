"""A run's folder: `{data_dir}/training/runs/{id}/` with `sift_run.json` (the exact config),
`data.jsonl` (the snapshot's conversations), `metrics.jsonl`, `train.log`, `checkpoints/` and
`final/` (the artifact evaluation loads)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from app.platform.config import get_settings

SPEC_NAME = "sift_run.json"
LOG_TAIL_CHARS = 20_000


def run_dir(run_id: int) -> Path:
    """The folder of run `run_id`."""
    return (get_settings().data_dir / "training" / "runs" / str(run_id)).resolve()


def data_file(folder: Path) -> Path:
    """The conversations the run trains on, one JSON list of messages per line."""
    return folder / "data.jsonl"


def checkpoints_dir(folder: Path) -> Path:
    """Where the trainer keeps its checkpoints (checkpoint-STEP)."""
    return folder / "checkpoints"


def final_dir(folder: Path) -> Path:
    """The final artifact: adapter or model, tokenizer, sift_run.json."""
    return folder / "final"


def write_spec(folder: Path, spec: dict[str, Any]) -> None:
    """Write the run's exact config."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / SPEC_NAME).write_text(json.dumps(spec, indent=2, sort_keys=True))


def read_spec(folder: Path) -> dict[str, Any]:
    """The run's exact config."""
    return dict(json.loads((folder / SPEC_NAME).read_text()))


def log(folder: Path, line: str) -> None:
    """Append a timestamped line to the run's log."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    with (folder / "train.log").open("a", encoding="utf-8") as handle:
        handle.write(f"{stamp} {line}\n")


def log_tail(folder: Path, chars: int = LOG_TAIL_CHARS) -> str:
    """The end of the run's log ("" before it starts)."""
    path = folder / "train.log"
    if not path.is_file():
        return ""
    text = path.read_text(encoding="utf-8", errors="replace")
    return text[-chars:]


def append_metric(folder: Path, row: dict[str, Any]) -> None:
    """Append one step's metrics."""
    with (folder / "metrics.jsonl").open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(row) + "\n")


def read_metrics(folder: Path) -> list[dict[str, Any]]:
    """Every step's metrics written so far, the latest line per step (a resumed run repeats
    the steps after its last checkpoint)."""
    path = folder / "metrics.jsonl"
    if not path.is_file():
        return []
    rows: dict[int, dict[str, Any]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # the line being written right now
        rows[int(row["step"])] = row
    return [rows[step] for step in sorted(rows)]


def heartbeat(folder: Path) -> None:
    """Mark the run alive (a worker that dies stops touching it)."""
    (folder / "heartbeat").touch()


def last_heartbeat(folder: Path) -> float | None:
    """When the run last showed it was alive (a Unix time), if ever."""
    path = folder / "heartbeat"
    return path.stat().st_mtime if path.is_file() else None


def checkpoints(folder: Path) -> list[int]:
    """The steps that have a checkpoint, in order."""
    root = checkpoints_dir(folder)
    if not root.is_dir():
        return []
    steps = [p.name.removeprefix("checkpoint-") for p in root.glob("checkpoint-*")]
    return sorted(int(s) for s in steps if s.isdigit())


def artifact_files(folder: Path) -> list[dict[str, Any]]:
    """The files of the final artifact, with their sizes."""
    final = final_dir(folder)
    if not final.is_dir():
        return []
    return [
        {"path": p.relative_to(final).as_posix(), "bytes": p.stat().st_size}
        for p in sorted(final.rglob("*"))
        if p.is_file()
    ]
