"""The file-system broker keeps everything, its exchange tables too, under the data folder: a
message sent from an empty working directory leaves nothing there (nor in the repository)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from app.platform.config import Settings
from app.platform.jobs.broker import make_celery

ROOT = Path(__file__).resolve().parents[2]


def test_the_embedded_broker_writes_only_under_the_data_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    settings = Settings(redis_url="", data_dir=tmp_path / "data")
    celery = make_celery(settings)
    options = celery.conf.broker_transport_options
    assert Path(options["control_folder"]).is_relative_to(settings.broker_dir)
    with celery.connection_for_write() as connection:
        celery.send_task("sift.nothing", connection=connection)
        celery.control.broadcast("ping", connection=connection, reply=False)
    assert list(work.iterdir()) == []
    assert list((settings.broker_dir / "control").glob("*.exchange"))


def test_no_broker_control_files_are_committed() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert [path for path in tracked if path.endswith(".exchange")] == []
