"""The wheel: built from this checkout, installed into a fresh virtual environment in a
temporary folder (no checkout and no ../shared in sight), and run from an empty folder: migrate,
import, score against the local test server, select, snapshot, export, the Self-Instruct
estimate from the seed tasks it ships, and `sift serve` with its pages and static files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, migrated_database, reset_postgres
from tests.llm_server import LLMServer
from tests.web.live import clean_env, free_port

RECORDS = 30


def _build_and_install(tmp_path: Path) -> Path:
    """The wheel installed into a fresh venv; its bin folder. The venv sees the test venv's
    third-party packages through a path entry (installing them afresh would take minutes and
    the network), never its editable Sift: a path entry's own .pth files are not run."""
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
         "-q", "-w", str(dist)],
        check=True, capture_output=True,
    )  # fmt: skip
    wheel = next(dist.glob("sift-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "_sift_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--no-deps", "--no-index", "-q",
         str(wheel)],
        check=True, capture_output=True,
    )  # fmt: skip
    return venv / "bin"


def test_the_wheel_works_from_an_empty_folder(tmp_path: Path, data_dir: Path) -> None:
    bin_dir = _build_and_install(tmp_path)
    work = tmp_path / "somewhere" / "empty"
    work.mkdir(parents=True)
    assert not (work.parent / "shared").exists() and not (work.parent.parent / "shared").exists()
    database = migrated_database("wheel")
    reset_postgres(database)  # empty: the wheel's own migrations build the schema
    records = json.loads((data_dir / "alpagasus" / "dolly_3k.json").read_text())[:RECORDS]
    (work / "dolly.json").write_text(json.dumps(records))

    with LLMServer() as llm:
        env = {k: v for k, v in clean_env().items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env |= {"SIFT_DATABASE_URL": database, "SIFT_SECRET_KEY": "wheel-test-secret-key",
                "SIFT_LLM__DEFAULT__BASE_URL": llm.base_url, "SIFT_LLM__DEFAULT__MODEL": "m",
                "SIFT_LLM__DEFAULT__PRICE_IN": "0.01", "SIFT_LLM__DEFAULT__PRICE_OUT": "0.02",
                "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"}  # fmt: skip

        def sift(*args: str) -> str:
            done = subprocess.run(
                [str(bin_dir / "sift"), *args], cwd=work, env=env, capture_output=True,
                text=True, timeout=300,
            )  # fmt: skip
            said = " ".join((done.stdout + done.stderr).split())
            assert done.returncode == 0, f"sift {' '.join(args)}: {said}"
            return said

        where = subprocess.run(
            [str(bin_dir / "python"), "-c", "import app, sift.client; print(app.__file__)"],
            cwd=work, env=env, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        assert where.startswith(str(tmp_path / "venv")), where
        sift("db", "upgrade")
        assert f"{RECORDS} new" in sift("import", "dolly.json", "--dataset", "pool")
        assert "succeeded" in sift("score", "--dataset", "pool", "--scorer", "alpagasus", "--wait")
        assert llm.stats()["total"] == RECORDS
        chosen = sift("select", "--dataset", "pool", "--method", "threshold", "--scorer",
                      "alpagasus", "--filter", "alpagasus>=4.5", "--budget", "10", "--into",
                      "best", "--wait")  # fmt: skip
        assert "succeeded" in chosen and "added 10" in chosen
        digest = sift("snapshot", "--collection", "best").split("digest ")[1].split()[0]
        sift("export", "--snapshot", digest, "--format", "jsonl", "--out", "best.jsonl")
        assert len((work / "best.jsonl").read_text().splitlines()) == 10
        estimate = sift("generate", "self-instruct", "--into", "grown", "--n", "20", "--estimate")
        assert "calls, up to $" in estimate
        sent = llm.stats()["total"]
        assert sent == RECORDS  # an estimate sends nothing

    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [str(bin_dir / "sift"), "serve", "--port", str(port)], cwd=work, env=env,
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert server.poll() is None, log.read_text()
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail(f"sift serve did not answer:\n{log.read_text()}")
        login = httpx.get(f"{base}/login")
        assert login.status_code == 200 and "<form" in login.text
        for asset in ("vendor/htmx.min.js", "vendor/swagger-ui-bundle.js", "app.css"):
            assert httpx.get(f"{base}/static/{asset}").status_code == 200, asset
        assert httpx.get(f"{base}/api/docs").status_code == 200
    finally:
        server.terminate()
        server.wait(30)
    # Everything Sift wrote is under its data folder (.sift by default), the broker's too.
    assert sorted(p.name for p in work.iterdir()) == [".sift", "best.jsonl", "dolly.json"]
