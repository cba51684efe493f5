"""The Python client against a running `sift serve` (web and its embedded worker, on a migrated
database of its own): a whole flow scripted from import to a snapshot as a `datasets.Dataset`
with the same rows as the JSONL export."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.orm import Session

from app.platform.db import make_engine
from app.users.service import create_token, create_user
from sift.client import Job, JobFailed, Sift, SiftError, arrow_rows
from tests.conftest import ROOT, migrated_database
from tests.web.live import free_port, server_env, wait_until_up

DATABASE = "client"
RECORDS = 60


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """`sift serve` on a free port (web and embedded worker) and a lead's API token."""
    url = migrated_database(DATABASE)
    engine = make_engine(url)
    with Session(engine) as session, session.begin():
        token = create_token(session, create_user(session, "client-lead", "lead", "correct horse"))
    engine.dispose()
    port = free_port()
    log = tmp_path / "serve.log"
    sift = Path(sys.executable).parent / "sift"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(sift), "serve", "--port", str(port)], cwd=ROOT,
            env=server_env(url, tmp_path / "data"), stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base, process, log, 90)
        yield base, token
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_a_whole_flow_ends_in_a_hugging_face_dataset(
    served: tuple[str, str], data_dir: Path, tmp_path: Path
) -> None:
    import datasets

    base, token = served
    records = json.loads((data_dir / "alpagasus" / "dolly_3k.json").read_text())[:RECORDS]
    pool = tmp_path / "dolly.json"
    pool.write_text(json.dumps(records))
    seen: list[Job] = []
    with Sift(base, token) as sift:
        imported = sift.import_file("pool", pool, source="dolly", progress=seen.append)
        assert imported.state == "succeeded" and imported.counts["new"] == RECORDS
        assert seen and seen[-1].state == "succeeded"
        assert sift.dataset("pool").example_count == RECORDS
        assert [d.name for d in sift.datasets()] == ["pool"]

        seen.clear()
        scored = sift.score("pool", "length", progress=seen.append)
        assert scored.counts["scored"] == RECORDS and seen[-1].done == RECORDS
        summary = sift.scores("pool")
        assert [s["scored"] for s in summary if s["scorer"].startswith("length")] == [RECORDS]

        every = list(sift.examples("pool", page_size=7))  # nine pages
        assert len(every) == RECORDS and [e.id for e in every] == sorted(e.id for e in every)
        assert [e.output for e in every] == [r["output"] for r in records]
        median = sorted(len(e.output or "") for e in every)[RECORDS // 2]
        longer = list(sift.examples("pool", score=f"length>={median}", page_size=5))
        assert 0 < len(longer) < RECORDS
        assert {e.id for e in longer} == {e.id for e in every if len(e.output or "") >= median}
        assert len(list(sift.examples("pool", limit=3))) == 3

        sift.create_collection("best", target_size=12)
        chosen = sift.select("best", "pool", "threshold", budget=12, scorer="length")
        assert chosen.counts["added"] == 12 and sift.collection("best").size == 12
        frozen = sift.freeze("best", note="from the client")
        assert frozen.example_count == 12 and sift.snapshots("best") == [frozen]
        assert sift.snapshot(frozen.digest[:16]) == frozen

        lines = httpx.get(
            f"{base}/api/v1/snapshots/{frozen.id}/export",
            params={"format": "jsonl"}, headers={"authorization": f"Bearer {token}"},
        ).text.splitlines()  # fmt: skip
        exported = [json.loads(line) for line in lines]
        assert len(exported) == 12
        table = sift.to_dataset(frozen.digest[:16])
        assert isinstance(table, datasets.Dataset)
        assert table.to_list() == arrow_rows(exported)
        assert [json.loads(m) for m in table["meta"]] == [r["meta"] for r in exported]
        frame = sift.to_pandas(frozen.id)
        assert list(frame["id"]) == [r["id"] for r in exported]
        assert list(frame["output"]) == [r["output"] for r in exported]

        with pytest.raises(SiftError) as missing:
            sift.dataset("nope")
        assert missing.value.status == 404
        bad = tmp_path / "bad.jsonl"
        bad.write_text('{"instruction": "no answer"}\n')
        with pytest.raises(JobFailed) as failed:
            sift.import_file("pool", bad)
        assert "field 'output' is missing" in (failed.value.job.error or "")
    with Sift(base, "not-a-token") as stranger, pytest.raises(SiftError) as refused:
        stranger.datasets()
    assert refused.value.status == 401
