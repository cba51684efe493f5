"""The processes Sift starts: Celery workers, and the one `sift serve` runs beside itself."""

from __future__ import annotations

import os
import signal
import sys

from app.platform.config import get_settings

# Tasks the embedded worker runs at once (`sift serve` with no Redis).
EMBEDDED_CONCURRENCY = 3


def worker_command(queues: str, beat: bool, concurrency: int, pool: str | None = None) -> list[str]:
    """The argv of a Celery worker for `queues`, named uniquely on this host (two workers
    called `celery@HOST` would take each other's control replies and restart records)."""
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "app.entrypoints.worker:celery_app",
        "worker",
        "-Q",
        queues,
        "-c",
        str(concurrency),
        "-n",
        f"sift-{queues.replace(',', '-')}-{os.getpid()}@%h",
        "--loglevel",
        "INFO",
    ]
    if beat:
        argv += ["--beat", "--schedule", str(get_settings().data_dir.resolve() / "beat-schedule")]
    if pool:
        argv += ["--pool", pool]
    return argv


def die_with_parent() -> None:
    """In a child process: the kernel stops it if its parent dies without cleaning up."""
    if sys.platform == "linux":
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
