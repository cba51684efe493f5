"""The `sift` command line on the embedded default (its own PostgreSQL server under
SIFT_DATA_DIR, no broker server)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from app.entrypoints.cli import cli
from app.platform.config import get_settings
from app.platform.db import get_engine, transaction
from app.platform.embedded_db import leave_server, pg_folder
from app.platform.security import user_for_token
from tests.factories import alpaca_record, write_json, write_jsonl
from tests.services import embedded_data_dir

Sift = Callable[..., Result]


def reset_caches() -> None:
    """Forget settings, engine and Celery app built from another environment."""
    from app.platform.jobs.broker import get_celery

    if get_engine.cache_info().currsize:
        get_engine().dispose()
    get_settings.cache_clear()
    get_engine.cache_clear()
    get_celery.cache_clear()


@contextmanager
def sift_in(data_dir: Path, *, keep: bool = False) -> Iterator[Sift]:
    """Run `sift ARGS...` against the embedded data directory `data_dir`, whose PostgreSQL
    server the first command starts; stopped at the end, and the folder removed unless `keep`."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name in ("SIFT_DATABASE_URL", "SIFT_REDIS_URL"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("SIFT_DATA_DIR", str(data_dir))
        monkeypatch.setenv("COLUMNS", "200")
        reset_caches()
        runner = CliRunner()

        def invoke(*args: object, input: str | None = None) -> Result:
            return runner.invoke(cli, [str(a) for a in args], input=input)

        try:
            yield invoke
        finally:
            reset_caches()
            leave_server(data_dir)
            if not keep:
                shutil.rmtree(data_dir, ignore_errors=True)
            monkeypatch.undo()
            reset_caches()


@pytest.fixture
def sift() -> Iterator[Sift]:
    """Run `sift ARGS...` against a fresh embedded data directory, whose PostgreSQL server the
    first command starts and the fixture stops."""
    with sift_in(embedded_data_dir()) as invoke:
        yield invoke


@pytest.fixture(scope="module")
def migrated_folder() -> Iterator[Path]:
    """A data directory whose server `sift db upgrade` initialised and migrated, then stopped:
    `ready` copies it instead of making a new cluster (initdb) for every test."""
    folder = embedded_data_dir()
    with sift_in(folder, keep=True) as invoke:
        result = invoke("db", "upgrade")
        assert result.exit_code == 0, result.output
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def ready(migrated_folder: Path) -> Iterator[Sift]:
    """`sift` on a migrated database: a fresh data directory holding a copy of
    `migrated_folder`'s stopped server (owners and modes kept), which its first command starts."""
    data_dir = embedded_data_dir()
    pg = pg_folder(migrated_folder)
    subprocess.run(["cp", "-a", str(pg), str(pg_folder(data_dir))], check=True)
    with sift_in(data_dir) as invoke:
        result = invoke("db", "upgrade")
        assert result.exit_code == 0, result.output
        assert "database is up to date" in result.stdout
        yield invoke


def assert_user_error(result: Result, *fragments: str) -> None:
    """Exit 1 with one clear line on stderr, never a traceback."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output and "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def records(n: int) -> list[dict]:
    return [alpaca_record(i) for i in range(n)]


# ---------------------------------------------------------------- database and accounts


def test_db_upgrade(sift: Sift) -> None:
    result = sift("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert "database is up to date" in result.stdout
    # The embedded server keeps its data in the data folder and stops with the last command.
    assert (get_settings().data_dir / "pg" / "PG_VERSION").is_file()
    assert sift("db", "upgrade").exit_code == 0  # twice is fine


def test_user_add_prints_a_password_and_token_create_prints_a_token(ready: Sift) -> None:
    added = ready("user", "add", "alice", "--role", "lead")
    assert added.exit_code == 0, added.output
    assert "created lead 'alice'" in added.stdout
    password = added.stdout.split("password:", 1)[1].split()[0]
    assert len(password) >= 12

    created = ready("token", "create", "alice")
    assert created.exit_code == 0, created.output
    token = created.stdout.strip()
    assert token.startswith("sift_")
    with transaction() as session:
        user = user_for_token(session, token)
        assert user is not None and (user.name, user.role) == ("alice", "lead")


def test_user_add_with_password_stdin(ready: Sift) -> None:
    result = ready(
        "user",
        "add",
        "bob",
        "--role",
        "annotator",
        "--password-stdin",
        input="a long enough password\n",
    )
    assert result.exit_code == 0, result.output
    assert "password:" not in result.stdout
    assert_user_error(
        ready("user", "add", "carol", "--password-stdin", input="short\n"), "8 characters"
    )


def test_account_mistakes_are_one_line_errors(ready: Sift) -> None:
    assert ready("user", "add", "alice", "--role", "lead").exit_code == 0
    assert_user_error(ready("user", "add", "alice", "--role", "lead"), "exists already")
    assert_user_error(ready("user", "add", "dave", "--role", "boss"), "unknown role")
    assert_user_error(ready("token", "create", "nobody"), "no user called 'nobody'")
    # --if-missing makes adding an existing user a no-op.
    assert ready("user", "add", "alice", "--role", "lead", "--if-missing").exit_code == 0


# ---------------------------------------------------------------- import and export


def test_import_prints_the_summary_and_reimport_adds_nothing(ready: Sift, tmp_path: Path) -> None:
    path = write_json(tmp_path / "data.json", records(3))
    first = ready("import", path, "--dataset", "d")
    assert first.exit_code == 0, first.output
    assert "3 new, 0 duplicate, 0 invalid" in first.stdout
    again = ready("import", path, "--dataset", "d")
    assert again.exit_code == 0, again.output
    assert "0 new, 3 duplicate, 0 invalid" in again.stdout


def test_a_large_import_indexes_for_search_after_the_rows_are_in(
    ready: Sift, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIFT_IMPORT_DEFER_SEARCH_MB", "0")  # every file counts as large
    get_settings.cache_clear()
    path = write_json(tmp_path / "data.json", records(3))
    done = ready("import", path, "--dataset", "large")
    assert done.exit_code == 0, done.output
    assert "3 new, 0 duplicate, 0 invalid" in done.stdout
    assert re.search(r"job \d+ succeeded: indexed 3", done.stdout), done.stdout


def test_import_of_a_bad_file_names_the_record(ready: Sift, tmp_path: Path) -> None:
    bad = records(3)
    bad[1]["output"] = 42
    result = ready("import", write_json(tmp_path / "bad.json", bad), "--dataset", "d")
    assert_user_error(result, "record 2", "field 'output' must be a string", "nothing was imported")
    # Nothing was imported: the good file afterwards adds all three.
    good = ready("import", write_json(tmp_path / "good.json", records(3)), "--dataset", "d")
    assert "3 new, 0 duplicate" in good.stdout


def test_import_of_a_truncated_jsonl_file_names_the_line(ready: Sift, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "cut.jsonl", records(4))
    path.write_bytes(path.read_bytes()[:-10])
    assert_user_error(ready("import", path, "--dataset", "d"), "line 4", "truncated")


def test_import_file_mistakes(ready: Sift, tmp_path: Path) -> None:
    assert_user_error(ready("import", tmp_path / "missing.json", "--dataset", "d"), "no such file")
    empty = tmp_path / "empty.json"
    empty.write_bytes(b"")
    assert_user_error(ready("import", empty, "--dataset", "d"), "empty")
    path = write_json(tmp_path / "ok.json", records(1))
    assert_user_error(ready("import", path, "--dataset", "d", "--format", "yaml"), "unknown format")
    assert_user_error(ready("import", path, "--dataset", "d", "--map", "nonsense"), "--map")


def test_import_skip_invalid(ready: Sift, tmp_path: Path) -> None:
    mixed = [*records(2), {"instruction": "no answer"}]
    result = ready(
        "import", write_jsonl(tmp_path / "m.jsonl", mixed), "--dataset", "d", "--skip-invalid"
    )
    assert result.exit_code == 0, result.output
    assert "2 new, 0 duplicate, 1 invalid" in result.stdout
    assert "line 3" in result.stderr


def test_import_with_a_mapping(ready: Sift, tmp_path: Path) -> None:
    rows = [{"question": "Why?", "answer": "Because."}]
    path = write_jsonl(tmp_path / "qa.jsonl", rows)
    result = ready(
        "import", path, "--dataset", "qa", "--map", "instruction=question", "--map", "output=answer"
    )
    assert result.exit_code == 0, result.output
    assert "1 new" in result.stdout
    out = Path(path.parent / "qa-out.json")
    assert ready("export", "--dataset", "qa", "--format", "alpaca", "--out", out).exit_code == 0
    assert json.loads(out.read_text()) == [{"instruction": "Why?", "output": "Because."}]


def test_export_writes_the_file(ready: Sift, tmp_path: Path) -> None:
    original = [alpaca_record(i, category="c") for i in range(5)]
    assert (
        ready("import", write_json(tmp_path / "in.json", original), "--dataset", "d").exit_code == 0
    )
    out = tmp_path / "exports" / "out.json"
    result = ready("export", "--dataset", "d", "--format", "alpaca", "--out", out)
    assert result.exit_code == 0, result.output
    assert "exported 5 records as alpaca" in result.stdout
    assert json.loads(out.read_text(encoding="utf-8")) == original
    assert [p.name for p in out.parent.iterdir()] == ["out.json"]  # no temporary file left

    jsonl = tmp_path / "out.jsonl"
    assert ready("export", "--dataset", "d", "--format", "jsonl", "--out", jsonl).exit_code == 0
    assert len(jsonl.read_text().splitlines()) == 5


def test_export_mistakes(ready: Sift, tmp_path: Path) -> None:
    out = tmp_path / "x.json"
    assert_user_error(
        ready("export", "--dataset", "nope", "--out", out), "no dataset called 'nope'"
    )
    assert_user_error(ready("export", "--out", out), "exactly one of")
    assert (
        ready("import", write_json(tmp_path / "in.json", records(1)), "--dataset", "d").exit_code
        == 0
    )
    assert_user_error(
        ready("export", "--dataset", "d", "--format", "yaml", "--out", out), "unknown export format"
    )
    assert not out.exists()


# ---------------------------------------------------------------- jobs


def test_background_import_runs_in_process_and_jobs_lists_it(ready: Sift, tmp_path: Path) -> None:
    path = write_json(tmp_path / "data.json", records(4))
    result = ready("import", path, "--dataset", "d", "--background", "--wait")
    assert result.exit_code == 0, result.output
    assert "succeeded" in result.stdout
    assert "new 4" in result.stdout

    listed = ready("jobs")
    assert listed.exit_code == 0, listed.output
    assert "import" in listed.stdout and "succeeded" in listed.stdout

    again = ready("import", path, "--dataset", "d")
    assert "0 new, 4 duplicate" in again.stdout


def test_background_import_of_a_bad_file_fails_the_job(ready: Sift, tmp_path: Path) -> None:
    bad = records(2)
    del bad[1]["output"]
    result = ready(
        "import", write_json(tmp_path / "bad.json", bad), "--dataset", "d", "--background", "--wait"
    )
    assert_user_error(result, "failed", "record 2")
    listed = ready("jobs")
    assert "failed" in listed.stdout


def test_jobs_on_an_empty_database(ready: Sift) -> None:
    result = ready("jobs")
    assert result.exit_code == 0, result.output
    assert "kind" in result.stdout and "state" in result.stdout


def test_score_runs_in_process_and_again_scores_nothing(ready: Sift, tmp_path: Path) -> None:
    path = write_json(tmp_path / "a.json", [alpaca_record(i) for i in range(30)])
    assert ready("import", path, "--dataset", "pool").exit_code == 0
    first = ready("score", "--dataset", "pool", "--scorer", "length", "--wait")
    assert first.exit_code == 0, first.output
    assert "succeeded" in first.output and "scored 30" in first.output
    again = ready("score", "--dataset", "pool", "--scorer", "length")
    assert again.exit_code == 0 and "scored" not in again.output.split("succeeded")[-1]


def test_score_mistakes_are_one_line_errors(
    ready: Sift, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_json(tmp_path / "a.json", [alpaca_record(1)])
    assert ready("import", path, "--dataset", "pool").exit_code == 0
    cases = {
        ("--dataset", "nope", "--scorer", "lima"): "no dataset",
        ("--dataset", "pool", "--scorer", "nope"): "alpagasus",
        ("--dataset", "pool", "--scorer", "alpagasus"): "SIFT_LLM__DEFAULT__BASE_URL",
        ("--dataset", "pool", "--scorer", "deita-evol"): "endpoint named 'default'",
        ("--dataset", "pool", "--scorer", "deita-quality", "--model", tmp_path): "model",
    }
    for args, message in cases.items():
        result = ready("score", *args)
        assert result.exit_code != 0 and message in result.output, (args, result.output)
        assert "Traceback" not in result.output
    monkeypatch.setenv("SIFT_LLM__DEFAULT__BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("SIFT_LLM__DEFAULT__MODEL", "m")
    get_settings.cache_clear()
    result = ready("score", "--dataset", "pool", "--scorer", "alpagasus", "--budget", "1")
    assert result.exit_code != 0 and "PRICE_IN" in result.output


def test_select_snapshot_and_export_a_collection(ready: Sift, tmp_path: Path) -> None:
    records = [alpaca_record(i) for i in range(40)]
    records += [{**r, "instruction": r["instruction"].upper()} for r in records[:5]]
    path = write_json(tmp_path / "a.json", records)
    assert ready("import", path, "--dataset", "pool").exit_code == 0
    assert ready("score", "--dataset", "pool", "--scorer", "length").exit_code == 0
    dedup = ready("dedup", "--dataset", "pool", "--method", "minhash", "--wait")
    assert dedup.exit_code == 0 and "succeeded" in dedup.output, dedup.output
    shown = ready(
        "select", "--dataset", "pool", "--method", "random", "--budget", "12",
        "--one-per-cluster", "minhash", "--into", "set", "--preview",
    )  # fmt: skip
    assert shown.exit_code == 0 and "12 of 40 candidates" in shown.output, shown.output
    picked = ready(
        "select", "--dataset", "pool", "--method", "threshold", "--filter", "length>=1",
        "--scorer", "length", "--budget", "10", "--into", "set", "--target-size", "10",
        "--name", "longest", "--wait",
    )  # fmt: skip
    assert picked.exit_code == 0 and "added 10" in picked.output, picked.output
    frozen = ready("snapshot", "--collection", "set", "--note", "first")
    assert frozen.exit_code == 0 and "10 examples" in frozen.output
    again = ready("snapshot", "--collection", "set")
    assert "unchanged" in again.output
    accepted_only = ready("snapshot", "--collection", "set", "--only-accepted")
    assert accepted_only.exit_code == 1 and "10 unreviewed" in accepted_only.output
    snapshot_id = frozen.output.split()[1]
    out = tmp_path / "set.jsonl"
    exported = ready("export", "--snapshot", snapshot_id, "--format", "jsonl", "--out", out)
    assert exported.exit_code == 0 and len(out.read_text().splitlines()) == 10
    full = ready("select", "--dataset", "pool", "--method", "random", "--budget", "3",
                 "--into", "set", "--wait")  # fmt: skip
    assert full.exit_code == 0 and "over target 3" in full.output, full.output


def test_dataset_rename_dependents_and_delete(ready: Sift, tmp_path: Path) -> None:
    path = write_json(tmp_path / "data.json", records(3))
    assert ready("import", path, "--dataset", "d").exit_code == 0
    renamed = ready("dataset", "rename", "d", "e")
    assert renamed.exit_code == 0 and "renamed dataset d to e" in renamed.stdout
    found = ready("dataset", "dependents", "e", "--json")
    assert found.exit_code == 0 and json.loads(found.stdout)["examples"] == 3
    refused = ready("dataset", "delete", "e", input="n\n")
    assert refused.exit_code == 1
    deleted = ready("dataset", "delete", "e", "--yes")
    assert deleted.exit_code == 0 and "deleted dataset e (3 examples)" in deleted.stdout
    assert_user_error(ready("dataset", "delete", "e", "--yes"), "no dataset")
