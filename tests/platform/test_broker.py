"""The file-system broker keeps everything, its exchange tables too, under the data folder: a
message sent from an empty working directory leaves nothing there (nor in the repository)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_embedded_broker_writes_only_under_the_data_folder(tmp_path: Path) -> None:
    """In a process of its own: kombu declares an exchange once per process, so after other
    tests a broadcast here would write no exchange file at all."""
    work, data = tmp_path / "work", tmp_path / "data"
    work.mkdir()
    script = textwrap.dedent(f"""
        from pathlib import Path
        from app.platform.config import Settings
        from app.platform.jobs.broker import make_celery
        settings = Settings(redis_url="", data_dir=Path({str(data)!r}))
        celery = make_celery(settings)
        folder = Path(celery.conf.broker_transport_options["control_folder"])
        assert folder.is_relative_to(settings.broker_dir), folder
        with celery.connection_for_write() as connection:
            celery.send_task("sift.nothing", connection=connection)
            celery.control.broadcast("ping", connection=connection, reply=False)
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIFT_")}
    subprocess.run([sys.executable, "-c", script], cwd=work, env=env | {"PYTHONPATH": str(ROOT)},
                   check=True, timeout=120)  # fmt: skip
    assert list(work.iterdir()) == []
    assert list((data / "broker" / "control").glob("*.exchange"))


def test_no_broker_control_files_are_committed() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert [path for path in tracked if path.endswith(".exchange")] == []
