"""A live Sift server for tests that need real HTTP concurrency: uvicorn serving
`app.entrypoints.web:create_app` in a subprocess, on a free port, against a database of the test server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.conftest import ROOT


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def clean_env() -> dict[str, str]:
    """This process's environment without Sift's settings, but for the model roots that let a
    process load the tiny models tests build (see tests/conftest.py)."""
    return {
        k: v for k, v in os.environ.items() if not k.startswith("SIFT_") or k == "SIFT_MODEL_ROOTS"
    }


def server_env(database_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a live server: its database and data folder, nothing of the shell's."""
    return clean_env() | {
        "SIFT_DATABASE_URL": database_url,
        "SIFT_DATA_DIR": str(data_dir),
        "SIFT_SECRET_KEY": "live-tests-secret",
        "SIFT_LOG_LEVEL": "WARNING",
        **extra,
    }


@contextmanager
def uvicorn_process(
    env: dict[str, str], log: Path
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """uvicorn serving the app with `env` in a subprocess, still starting (importing the app
    takes seconds): its base URL and process, stopped at the end."""
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app.entrypoints.web:create_app", "--factory",
             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
             "--no-proxy-headers"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        yield f"http://127.0.0.1:{port}", process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def live_server(env: dict[str, str], log: Path, *, timeout_s: float = 60) -> Iterator[str]:
    """The base URL of uvicorn serving the app with `env`, once /healthz answers; stopped at
    the end. Fails with the server's log when it dies first."""
    with uvicorn_process(env, log) as (base, process):
        wait_until_up(base, process, log, timeout_s)
        yield base


def wait_until_up(base: str, process: subprocess.Popen[bytes], log: Path, timeout_s: float) -> None:
    """Return once /healthz answers; raise with the server's log if it died or never answered."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"the server stopped (exit {process.returncode}):\n{log.read_text()}"
            )
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the server did not answer in {timeout_s} s:\n{log.read_text()}")
