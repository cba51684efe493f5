"""`sift experiment`: two arms (random and a threshold) over 200 real examples with a tiny
budget, built, trained and scored on IFEval end to end; the leaderboard's JSON; a second run
reuses everything."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from app.datasets.records import join_prompt
from app.entrypoints.cli import cli
from app.experiments.leaderboard import bootstrap, jaccard
from app.experiments.service import ArmSpec
from app.models import EvalRun, Experiment, ExperimentArm, Job, Snapshot, SnapshotItem, TrainingRun
from app.platform.config import get_settings
from app.platform.db import transaction
from app.platform.errors import InvalidInput
from tests.endpoints import configure_endpoint
from tests.factories import write_json, write_jsonl
from tests.llm_server import LLMServer
from tests.training.tiny_model import build_tiny_base, short_records


def _invoke(*args: object) -> Any:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def judge(monkeypatch: pytest.MonkeyPatch) -> Iterator[LLMServer]:
    """The test server as the endpoint `judge`: A's answer scores 8, B's 3, in either order."""
    with LLMServer() as server:
        configure_endpoint(monkeypatch, "judge", base_url=server.base_url, model="judge-model")
        server.script(r"(?s)^", "8 3\nThe first answer is better.", model="judge-model")
        yield server
    get_settings.cache_clear()


def test_an_experiment_of_two_arms_end_to_end(
    embedded: Engine, data_dir: Path, tmp_path: Path, judge: LLMServer
) -> None:
    records = short_records(data_dir, 200)
    texts = [join_prompt(r["instruction"], r["input"]) + " " + r["output"] for r in records]
    base = build_tiny_base(tmp_path / "tiny", texts)
    _invoke("import", write_json(tmp_path / "pool.json", records), "--dataset", "pool")
    _invoke("score", "--dataset", "pool", "--scorer", "length", "--wait")
    questions = [{"prompt": f"Give {w} a name."} for w in ("a cat", "a dog", "a ship")]
    _invoke(
        "eval", "import-test-set", write_jsonl(tmp_path / "qs.jsonl", questions), "--name", "qs"
    )
    created = _invoke(
        "experiment", "create", "first", "--dataset", "pool", "--budget", "8",
        "--arm", "random", "--arm", "threshold:length>=20", "--base-model", base,
        "--template", "alpaca", "--max-steps", "2", "--set", "micro_batch_size=4",
        "--set", "batch_size=4", "--set", "max_seq_length=64", "--eval", "ifeval:3",
        "--max-tokens", "8", "--judge", "judge", "--test-set", "qs", "--baseline", "random",
        "--heldout", "20",
    )  # fmt: skip
    assert "experiment first: 2 arms of 8 from pool, 20 examples held out" in created.stdout
    for extra, message in (
        (["--judge", "judge"], "test_set: the judge compares answers on a test set"),
        (["--judge", "judge", "--test-set", "qs", "--baseline", "deita"], "baseline: 'deita'"),
        (["--arm", "random"], "arms: each arm once"),
        (["--eval", "mmlu"], "--eval 'mmlu': write ifeval or ifeval:N"),
    ):
        refused = CliRunner().invoke(cli, ["experiment", "create", "second", "--dataset", "pool",
                                           "--budget", "8", "--arm", "random", "--base-model",
                                           str(base), "--template", "alpaca", *extra])  # fmt: skip
        assert refused.exit_code == 1 and message in refused.output, refused.output
    taken = CliRunner().invoke(cli, ["experiment", "create", "first", "--dataset", "pool",
                                     "--budget", "8", "--arm", "random", "--base-model", str(base),
                                     "--template", "alpaca"])  # fmt: skip
    assert taken.exit_code == 1 and "exists already" in taken.output
    ran = _invoke("experiment", "run", "first", "--wait")
    assert (
        "first · random · training" in ran.output
        and "first · random · held-out loss" in ran.output
        and "first · threshold:length>=20 · IFEval" in ran.output
    )
    board = json.loads(_invoke("experiment", "show", "first", "--json").stdout)
    assert [a["name"] for a in board["arms"]] == ["random", "threshold:length>=20"]
    for arm in board["arms"]:
        assert arm["size"] == 8 and arm["snapshot"] and arm["run"]
        assert arm["run_state"] == "succeeded" and arm["evaluation_state"] == "succeeded"
        assert set(arm["metrics"]) == {
            "prompt_strict", "prompt_loose", "instruction_strict", "instruction_loose",
            "heldout_loss",
        }  # fmt: skip
        assert arm["steps"]["heldout"]["state"] == "succeeded"
        for metric in arm["metrics"].values():
            assert metric["low"] <= metric["value"] <= metric["high"]
    # The threshold arm judged against the random one, both orders: the judge always prefers
    # the answer shown first, so every prompt is a win in one order and a loss in the other.
    assert board["arms"][0]["pairwise"] is None and board["baseline"] == "random"
    versus = board["arms"][1]["pairwise"]
    assert versus["against"] == "random" and versus["state"] == "succeeded"
    assert (versus["wins"], versus["ties"], versus["losses"]) == (0, 3, 0)
    overlap = board["overlap"]
    assert overlap[0][0] == overlap[1][1] == 1.0 and overlap[0][1] == overlap[1][0] < 1.0
    with transaction() as session:
        # Every arm: the same base model and config; one run and one IFEval each.
        runs = session.query(TrainingRun).all()
        assert len(runs) == 2 and len({(r.base_model, str(r.params)) for r in runs}) == 1
        assert session.query(EvalRun).count() == 3  # two IFEval runs, one pairwise
        snapshots = session.query(Snapshot).count()
        # No arm trained on a held-out example.
        experiment = session.query(Experiment).filter_by(name="first").one()
        assert len(experiment.heldout_ids) == 20
        for arm in session.query(ExperimentArm).filter_by(experiment_id=experiment.id):
            frozen = session.query(SnapshotItem.example_id).filter_by(snapshot_id=arm.snapshot_id)
            assert not {i for (i,) in frozen} & set(experiment.heldout_ids)
            assert arm.heldout is not None and len(arm.heldout["losses"]) == 20
        measured = session.query(Job).filter_by(kind="experiment-heldout").count()
    # Run again: nothing is built, trained or answered twice.
    _invoke("experiment", "run", "first", "--wait")
    with transaction() as session:
        assert session.query(TrainingRun).count() == 2 and session.query(EvalRun).count() == 3
        assert session.query(Snapshot).count() == snapshots
        assert session.query(Job).filter_by(kind="experiment-heldout").count() == measured == 2
    shown = _invoke("experiment", "show", "first")
    assert "threshold:length>=20" in shown.stdout and "overlap (Jaccard)" in shown.stdout


def test_arms_and_intervals() -> None:
    assert ArmSpec.parse(" threshold: alpagasus>=4.5 ").name == "threshold:alpagasus>=4.5"
    assert ArmSpec.parse("random").name == "random"
    for bad, message in (("threshold", "needs a value"), ("random:3", "takes no value"),
                         ("longer", "is not one of"), ("snapshot:x", "not a number")):  # fmt: skip
        with pytest.raises(InvalidInput, match=message):
            ArmSpec.parse(bad)
    followed = [[True, True], [True, False], [False], [True]] * 10
    strict = bootstrap(followed, "prompt_strict")
    assert strict["value"] == 0.5 and strict["low"] < 0.5 < strict["high"]  # type: ignore[operator]
    assert bootstrap(followed, "prompt_strict") == strict  # seeded
    assert bootstrap(followed, "instruction_strict")["value"] == pytest.approx(4 / 6)
    assert bootstrap([], "prompt_strict")["value"] is None
    assert jaccard([{1, 2}, {2, 3}, set()]) == [
        [1.0, 1 / 3, 0.0],
        [1 / 3, 1.0, 0.0],
        [0.0, 0.0, None],
    ]
