"""`sift eval` on the embedded default: import test sets, evaluate, list, show, retry."""

from __future__ import annotations

from pathlib import Path

from tests.factories import write_jsonl
from tests.llm_server import LLMServer
from tests.test_cli import (  # noqa: F401  (fixtures)
    Sift,
    assert_user_error,
    migrated_folder,
    ready,
    sift,
)


def test_import_the_real_test_sets(ready: Sift, data_dir: Path) -> None:  # noqa: F811
    vicuna = ready(
        "eval", "import-test-set", data_dir / "alpagasus/vicuna_test_set.jsonl", "--name", "vicuna"
    )
    assert vicuna.exit_code == 0, vicuna.output
    assert "test set vicuna: 80 prompts (vicuna, up to 1 turn(s))" in vicuna.stdout
    mt = ready(
        "eval", "import-test-set", data_dir / "mt_bench/question.jsonl", "--name", "mt-bench"
    )
    assert "test set mt-bench: 80 prompts (mt-bench, up to 2 turn(s))" in mt.stdout
    again = ready(
        "eval", "import-test-set", data_dir / "mt_bench/question.jsonl", "--name", "mt-bench"
    )
    assert again.exit_code == 0 and "unchanged: already imported" in again.stdout
    listed = ready("eval", "test-sets")
    assert "mt-bench" in listed.stdout and "vicuna" in listed.stdout


def test_user_mistakes_are_one_line(ready: Sift, tmp_path: Path) -> None:  # noqa: F811
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"prompt": "ok"}, {"prompt": 3}])
    assert_user_error(
        ready("eval", "import-test-set", bad, "--name", "bad"),
        "record 2: field 'prompt' must be a non-empty string",
    )
    assert_user_error(ready("eval", "--a", "alpha"), "sift eval needs --a, --b")
    assert_user_error(
        ready("eval", "--a", "x", "--b", "y", "--test-set", "none", "--judge", "j"),
        "no LLM endpoint named 'x'",
    )
    assert_user_error(ready("eval", "show", "7"), "no evaluation 7")


def test_an_evaluation_from_the_command_line(
    ready: Sift,  # noqa: F811
    llm: LLMServer,
    tmp_path: Path,
) -> None:
    for first, reply in (("alpha", "9 4"), ("beta", "4 9")):
        llm.script(rf"1's Answer\]\n{first} answer", f"{reply}\nA is better.", model="judge-model")
    path = write_jsonl(tmp_path / "qs.jsonl", [{"prompt": f"q{i} Why?"} for i in range(3)])
    assert ready("eval", "import-test-set", path, "--name", "small").exit_code == 0

    result = ready(
        "eval",
        "--a",
        "alpha",
        "--b",
        "endpoint:beta",
        "--test-set",
        "small",
        "--judge",
        "judge",
        "--max-tokens",
        "64",
        "--wait",
    )

    assert result.exit_code == 0, result.output
    assert "job 1 succeeded: wins 3, ties 0, losses 0" in result.stdout
    assert (
        "evaluation 1: endpoint:alpha against endpoint:beta on small: 3 wins, 0 ties, 0 losses, "
        "0 errors; winning score 2.000"
    ) in result.stdout
    assert llm.stats()["total"] == 3 * 4
    listed = ready("eval", "list")
    assert "endpoint:alpha" in listed.stdout and "2.000" in listed.stdout
    assert "3 wins" in ready("eval", "show", "1").stdout
    retried = ready("eval", "retry", "1", "--wait")
    assert retried.exit_code == 0, retried.output
    assert llm.stats()["total"] == 3 * 4  # nothing had failed: nothing is asked again
