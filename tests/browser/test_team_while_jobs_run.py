"""A team at work while jobs run, on the embedded default: `sift serve` with its own
PostgreSQL server and its own worker, no other server.

While an embedding job and a scoring job run on the same 10,000-example dataset, an annotator
makes 20 decisions and one edit, a lead creates a collection and adds examples by hand, and a
third job is cancelled: no response is a 5xx, both running jobs end succeeded, and the
cancelled one shows cancelled within 10 seconds.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.browser.conftest import PASSWORD, ROOT
from tests.services import embedded_data_dir
from tests.tiny_models import save_random_llama, word_tokenizer
from tests.web.live import clean_env, free_port, wait_until_up

EXAMPLES = 10_000


@dataclass
class Studio:
    """A running `sift serve` and how to reach it."""

    base: str
    env: dict[str, str]
    log: Path

    def sift(self, *args: str, stdin: str | None = None) -> str:
        """Run a `sift` command against this studio's data folder; its stdout."""
        done = subprocess.run(
            [sys.executable, "-m", "app.entrypoints.cli", *args],
            cwd=ROOT, env=self.env, input=stdin, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def jobs(self) -> dict[int, str]:
        """Every job's state, from the API."""
        return {job["id"]: job["state"] for job in self.job_rows()}

    def job_rows(self) -> list[dict[str, Any]]:
        """Every job as the API shows it."""
        token = self.env["TEST_TOKEN"]
        answer = httpx.get(
            f"{self.base}/api/v1/jobs", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert answer.status_code == 200, answer.text
        rows: list[dict[str, Any]] = answer.json()
        return rows


def _pool_file(folder: Path, data_dir: Path) -> Path:
    """10,000 real records: AlpaGasus's 9k, then Dolly's."""
    records = json.loads((data_dir / "alpagasus" / "random_9k.json").read_text())
    records += json.loads((data_dir / "alpagasus" / "dolly_3k.json").read_text())
    path = folder / "pool.json"
    path.write_text(json.dumps(records[:EXAMPLES]))
    return path


@pytest.fixture
def studio(data_dir: Path, tmp_path: Path) -> Iterator[Studio]:
    """`sift serve` on a fresh embedded data folder, with an LLM endpoint on a local server
    that answers one call at a time (for the job that will be cancelled)."""
    folder = embedded_data_dir()
    # The endpoint runs in a process of its own: in this one it would compete with the
    # browser driver for the interpreter.
    llm = subprocess.Popen(
        [sys.executable, "-m", "tests.llm_server", "--port", "0", "--latency-ms", "30"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert llm.stdout is not None
    base_url = llm.stdout.readline().strip()
    try:
        env = clean_env()
        env |= {
            "SIFT_DATA_DIR": str(folder),
            "SIFT_SECRET_KEY": "team-test-secret",
            "SIFT_LLM__SLOW__BASE_URL": base_url,
            "SIFT_LLM__SLOW__MODEL": "slow-rater",
            "SIFT_LLM__SLOW__CONCURRENCY": "1",
            "SIFT_LLM__SLOW__TIMEOUT_S": "30",
            # One torch thread per process: the embedded worker runs three at once on this
            # machine's two cores, and torch's spinning threads cost five times the CPU time
            # of one each (12.6 s instead of 2.4 s for 300 texts on a loaded machine).
            "OMP_NUM_THREADS": "1",
        }
        port = free_port()
        log = tmp_path / "serve.log"
        with log.open("wb") as out:
            serve = subprocess.Popen(
                [sys.executable, "-m", "app.entrypoints.cli", "serve", "--port", str(port)],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_up(base, serve, log, timeout_s=120)
            studio = Studio(base, env, log)
            for name, role in (("lead", "lead"), ("ann", "annotator")):
                studio.sift("user", "add", name, "--role", role, "--password-stdin", stdin=PASSWORD)
            env["TEST_TOKEN"] = studio.sift("token", "create", "lead").strip()
            studio.sift("import", str(_pool_file(tmp_path, data_dir)), "--dataset", "pool")
            yield studio
        finally:
            # As `sift serve` is stopped: it stops its worker and its database. (A SIGTERM to
            # the whole group reached the worker's pool processes too, and the worker then took
            # 30 s to give up.) Whatever is left after that is killed.
            serve.terminate()
            serve.wait(timeout=60)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(serve.pid, signal.SIGKILL)
    finally:
        llm.terminate()
        llm.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def _signed_in(browser: Any, base: str, name: str, server_errors: list[str]) -> Any:
    context = browser.new_context(base_url=base)
    context.set_default_timeout(30_000)
    page = context.new_page()

    def record(answer: Any) -> None:
        if answer.status >= 500:
            server_errors.append(f"{answer.status} {answer.request.method} {answer.url}")

    page.on("response", record)
    page.goto("/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)
    return page


def _wait_for(studio: Studio, condition: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition(studio.jobs()):
            return
        time.sleep(0.5)
    progress = [(j["id"], j["state"], j["done"], j["total"]) for j in studio.job_rows()]
    log = "\n".join(line for line in studio.log.read_text().splitlines() if " /api/" not in line)
    raise AssertionError(f"timed out waiting for {what}: {progress}\n{log[-6000:]}")


def _tiny_embedder(folder: Path) -> Path:
    """A random two-layer Llama on a word tokenizer of the pool: the real embedding job and
    its storage in seconds, where MiniLM would take minutes of this machine's two cores. The
    pool's 1,000 most frequent words (the rest are [UNK]): the model computes logits over its
    vocabulary at every position, and 30,000 words tripled the job's CPU time."""
    records = json.loads((folder / "pool.json").read_text())
    corpus = (f"{r['instruction']} {r.get('input', '')} {r['output']}" for r in records)
    tokenizer = word_tokenizer(corpus, vocab_size=1_000)
    return save_random_llama(folder / "embedder", tokenizer, hidden=32, positions=2048)


@pytest.mark.slow
def test_a_team_works_while_jobs_run(studio: Studio, browser: Any, tmp_path: Path) -> None:
    # As in the report that started this: LIMA's heuristics and the embedding at once.
    studio.sift("score", "--dataset", "pool", "--scorer", "lima")
    studio.sift("embed", "--dataset", "pool", "--model", str(_tiny_embedder(tmp_path)))
    studio.sift("score", "--dataset", "pool", "--scorer", "alpagasus", "--endpoint", "slow")
    score_id, embed_id, slow_id = sorted(studio.jobs())
    _wait_for(studio, lambda jobs: "running" in (jobs[embed_id], jobs[score_id]), 60, "a start")

    errors: list[str] = []
    annotator = _signed_in(browser, studio.base, "ann", errors)
    annotator.goto(f"/review/queue?dataset={quote('pool')}")
    with annotator.expect_navigation():
        annotator.get_by_role("button", name="Start reviewing").click()
    for _ in range(20):
        with annotator.expect_navigation():
            annotator.keyboard.press("a")
    annotator.keyboard.press("e")
    annotator.locator("#editor textarea[name=turn_1]").fill("An answer fixed by hand.")
    with annotator.expect_navigation():
        annotator.keyboard.press("Control+Enter")
    assert "last_action=edit" in annotator.url

    lead = _signed_in(browser, studio.base, "lead", errors)
    lead.goto("/collections")
    lead.fill("input[name=name]", "by-hand")
    lead.fill("input[name=target_size]", "50")
    lead.get_by_role("button", name="Create collection").click()
    lead.wait_for_url("**/collections/by-hand*")
    for _ in range(3):
        with lead.expect_navigation():
            lead.locator("#pick-list form[action$='/items/add'] button").first.click()
    assert "3" in lead.locator("body").inner_text()

    lead.goto("/jobs")
    row = lead.locator("tr", has=lead.locator("td.num", has_text=str(slow_id)))
    row.get_by_role("button", name="Cancel").click()
    cancelled_at = time.monotonic()
    _wait_for(studio, lambda jobs: jobs[slow_id] == "cancelled", 10, "the cancel")
    assert time.monotonic() - cancelled_at < 10
    states = studio.jobs()
    assert states[embed_id] in ("queued", "running", "succeeded")  # untouched by the cancel

    _wait_for(
        studio,
        lambda jobs: jobs[embed_id] == jobs[score_id] == "succeeded",
        1200,
        "the embedding and scoring jobs",
    )
    assert studio.jobs()[slow_id] == "cancelled"
    assert errors == []
    assert "Traceback" not in studio.log.read_text()
