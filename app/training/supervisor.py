"""Supervising a run's training in the worker: in this process on one device, or as one
`gpu_process` per GPU under `accelerate launch`, followed through the run folder (metrics,
progress, a stop file)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from app.training import layout
from app.training.trainer import MetricHook, StepHook, StopRequested, train

STOPPED_EXIT = 3  # what app.training.gpu_process exits with after a requested stop


def gpu_count() -> int:
    """How many GPUs this worker sees."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def run_training(
    folder: Path, processes: int | None, on_step: StepHook, on_metric: MetricHook
) -> dict[str, Any]:
    """Train the run in `folder`; StopRequested when `on_step` asked it to stop."""
    count = processes or max(1, gpu_count())
    if count <= 1:
        return train(folder, on_step, on_metric)
    return run_distributed(folder, count, on_step, on_metric)


def launch_command(folder: Path, processes: int) -> list[str]:
    """`accelerate launch` of app.training.gpu_process with one process per GPU."""
    return [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--num_processes",
        str(processes),
        "--multi_gpu",
        "--mixed_precision",
        "no",  # the Trainer sets bf16 itself where the device has it
        "-m",
        "app.training.gpu_process",
        str(folder),
    ]


def run_distributed(
    folder: Path, processes: int, on_step: StepHook, on_metric: MetricHook
) -> dict[str, Any]:
    """Train with `processes` processes; relay their metrics and progress, and ask them to
    stop (they checkpoint first) when `on_step` raises StopRequested."""
    stop_file = folder / "stop"
    stop_file.unlink(missing_ok=True)
    child = subprocess.Popen(launch_command(folder, processes), start_new_session=True)
    seen = 0
    try:
        while child.poll() is None:
            time.sleep(1.0)
            seen = _relay_metrics(folder, seen, on_metric)
            step, total = _progress(folder)
            try:
                on_step(step, total)
            except StopRequested:
                stop_file.touch()
        _relay_metrics(folder, seen, on_metric)
    except BaseException:
        os.killpg(child.pid, signal.SIGTERM)
        child.wait()
        raise
    if child.returncode == STOPPED_EXIT:
        raise StopRequested()
    if child.returncode != 0:
        raise RuntimeError(f"the training processes exited with {child.returncode}; see train.log")
    return dict(layout.read_spec(layout.final_dir(folder))["summary"])


def _relay_metrics(folder: Path, seen: int, on_metric: MetricHook) -> int:
    path = folder / "metrics.jsonl"
    if not path.is_file():
        return seen
    text = path.read_text(encoding="utf-8")
    # A line without its newline yet is still being written.
    complete = text[: text.rfind("\n") + 1].splitlines()
    for line in complete[seen:]:
        on_metric(json.loads(line))
    return max(seen, len(complete))


def _progress(folder: Path) -> tuple[int, int]:
    path = folder / "progress.json"
    try:
        value = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return 0, 0
    return int(value["step"]), int(value["total"])
