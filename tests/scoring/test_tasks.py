"""Score jobs end to end: chunks of a real dataset scored against a real HTTP test server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select

from app.datasets.service import create_dataset
from app.entrypoints.domains import load_every_job_kind
from app.jobs.service import resume_job
from app.models import Dataset, Example, Job, JobState, Score, ScoreState
from app.platform.config import get_settings
from app.platform.db import transaction
from app.platform.jobs.dispatch import run_jobs_here
from app.platform.jobs.runner import execute_job
from app.scoring.service import find_scorer, start_score_job
from tests.factories import make_example
from tests.llm_server import LLMServer
from tests.scoring.tiny_llama import build_tiny_llama

load_every_job_kind()

FAULTS = {
    "plain": ("", ScoreState.OK, 4.5),
    "retry-after": ("[[status:429:times=1:retry_after=1]]", ScoreState.OK, 4.5),
    "flaky": ("[[status:500:times=2]]", ScoreState.OK, 4.5),
    "broken": ("[[status:500:times=99]]", ScoreState.FAILED, None),
    "silent": ("[[hang]]", ScoreState.FAILED, None),
    "prose": ("[[reply:A fine answer, all things considered.]]", ScoreState.PARSE_ERROR, None),
    "eleven": ("[[reply:11/10\\nSuperb.]]", ScoreState.PARSE_ERROR, None),
    "refusal": ("[[reply:I'm sorry, but I can't help with that.]]", ScoreState.PARSE_ERROR, None),
    "truncated": ("[[reply:4][[finish:length]]", ScoreState.PARSE_ERROR, None),
    "score-colon": ("[[reply:The Score: 3.5 overall]]", ScoreState.OK, 3.5),
}


@pytest.fixture
def server(committed: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[LLMServer]:
    """The test server as the `default` endpoint: priced, quick to give up on a silent call."""
    with LLMServer() as llm:
        for name, value in {
            "BASE_URL": llm.base_url,
            "MODEL": "test-model",
            "PRICE_IN": "0.01",
            "PRICE_OUT": "0.02",
            "TIMEOUT_S": "0.5",
            "MAX_ATTEMPTS": "3",
            "CONCURRENCY": "4",
        }.items():
            monkeypatch.setenv(f"SIFT_LLM__DEFAULT__{name}", value)
        monkeypatch.setenv("SIFT_SCORE_CHUNK_SIZE", "4")
        get_settings.cache_clear()
        yield llm
    get_settings.cache_clear()


def _stats(llm: LLMServer) -> dict[str, Any]:
    return httpx.get(llm.base_url.removesuffix("/v1") + "/_stats").json()


def _dataset(instructions: dict[str, str], name: str = "pool") -> dict[str, str]:
    """A dataset of one example per instruction; returns content hash -> label."""
    labels = {}
    with transaction() as session:
        dataset = create_dataset(session, name)
        for i, (label, text) in enumerate(instructions.items()):
            example = make_example(session, dataset, i, {"instruction": f"Task {label}. {text}"})
            labels[example.content_hash] = label
    return labels


def _score(scorer: str, dataset: str = "pool", **options: Any) -> Job:
    with transaction() as session:
        target = session.scalar(select(Dataset).where(Dataset.name == dataset))
        assert target is not None
        run_jobs_here(session)
        job_id = start_score_job(session, target, scorer, **options).id
    execute_job(job_id, inline=True)
    with transaction() as session:
        job = session.get(Job, job_id)
        assert job is not None
        session.expunge(job)
        return job


def _scores(scorer: str) -> dict[str, Score]:
    with transaction() as session:
        found = find_scorer(session, scorer)
        rows = session.scalars(select(Score).where(Score.scorer_id == found.id)).all()
        for row in rows:
            session.expunge(row)
        return {row.content_hash: row for row in rows}


def test_every_example_ends_ok_parse_error_or_failed(server: LLMServer) -> None:
    labels = _dataset({label: directive for label, (directive, _, _) in FAULTS.items()})
    job = _score("alpagasus")
    assert job.state == JobState.SUCCEEDED.value, job.error
    scores = _scores("alpagasus")
    assert len(scores) == len(FAULTS)
    for content_hash, score in scores.items():
        _, state, value = FAULTS[labels[content_hash]]
        assert (labels[content_hash], score.state, score.value) == (
            labels[content_hash],
            state.value,
            value,
        )
        if score.state != ScoreState.OK.value:
            assert score.value is None and score.raw  # the reason or the model's text is kept
    counts = job.counts
    assert (counts["scored"], counts["parse_errors"], counts["failed"]) == (4, 4, 2)
    assert job.done == job.total == len(FAULTS)
    assert counts["cost"] > 0 and counts["prompt_tokens"] > 0


def test_scoring_again_sends_nothing_and_retries_only_failures(server: LLMServer) -> None:
    _dataset({"a": "", "b": "[[reply:3\\nok]]", "c": "[[status:500:times=3]]"})
    first = _score("alpagasus")
    assert first.counts["failed"] == 1
    sent = _stats(server)["total"]
    second = _score("alpagasus")  # only the failed example is tried again, and now it works
    assert second.counts == second.counts | {"scored": 1, "failed": 0}
    assert _stats(server)["total"] == sent + 1
    third = _score("alpagasus")
    assert _stats(server)["total"] == sent + 1
    assert third.total == 3 and third.done == 3 and third.counts.get("sent", 0) == 0


def test_a_budget_pauses_the_job_and_resume_goes_on(server: LLMServer) -> None:
    _dataset({f"t{i}": "" for i in range(12)})
    # A call reserves about 0.007 USD here (256 tokens out) and costs about 0.002; 0.015 USD
    # pays for a few of the twelve.
    job = _score("alpagasus", budget_usd=0.015)
    assert job.state == JobState.PAUSED_BUDGET.value
    assert job.spent_usd <= 0.015
    paid = len([s for s in _scores("alpagasus").values() if s.state == "ok"])
    assert 0 < paid < 12
    with transaction() as session:
        run_jobs_here(session)
        resume_job(session, job.id, budget_usd=10.0)
    assert execute_job(job.id, inline=True) == JobState.SUCCEEDED.value
    assert len(_scores("alpagasus")) == 12
    assert all(count == 1 for count in _stats(server)["by_prompt"].values())


def test_an_unpriced_endpoint_refuses_a_budget(
    server: LLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SIFT_LLM__DEFAULT__PRICE_OUT")
    get_settings.cache_clear()
    _dataset({"a": ""})
    with pytest.raises(Exception, match="PRICE_OUT"), transaction() as session:
        target = session.scalar(select(Dataset))
        assert target is not None
        run_jobs_here(session)
        start_score_job(session, target, "alpagasus", budget_usd=1.0)


def test_deita_from_logprobs_and_the_evol_score(server: LLMServer) -> None:
    even = "[[logprobs:1=-1.0,2=-1.0,3=-1.0,4=-1.0,5=-1.0,6=-1.0]]"
    _dataset({"even": even, "sure": "[[logprobs:6=0.0,1=-30,2=-30,3=-30,4=-30,5=-30]]"})
    labels = {}
    with transaction() as session:
        for example in session.scalars(select(Example)):
            labels[example.content_hash] = (
                "even" if "even" in (example.instruction or "") else "sure"
            )
    for scorer in ("deita-complexity", "deita-quality"):
        assert _score(scorer).state == JobState.SUCCEEDED.value
    assert _score("deita-evol").state == JobState.SUCCEEDED.value
    complexity = {labels[h]: s.value for h, s in _scores("deita-complexity").items()}
    evol = {labels[h]: s.value for h, s in _scores("deita-evol").items()}
    assert complexity["even"] == pytest.approx(3.5)
    assert complexity["sure"] == pytest.approx(6.0, abs=1e-6)
    assert evol == pytest.approx({"even": 3.5 * 3.5, "sure": 36.0}, abs=1e-5)


def test_evol_needs_its_inputs_first(server: LLMServer) -> None:
    _dataset({"a": ""})
    with pytest.raises(Exception, match="deita-complexity"), transaction() as session:
        target = session.scalar(select(Dataset))
        assert target is not None
        run_jobs_here(session)
        start_score_job(session, target, "deita-evol")


def test_deita_with_a_local_model(committed: Engine, tmp_path: Path) -> None:
    model = build_tiny_llama(tmp_path / "tiny")
    _dataset({"a": "", "b": "Something longer to read."})
    job = _score("deita-quality", model_path=str(model))
    assert job.state == JobState.SUCCEEDED.value, job.error
    scores = _scores("deita-quality")
    assert len(scores) == 2 and all(1 <= (s.value or 0) <= 6 for s in scores.values())
    with transaction() as session:
        assert find_scorer(session, "deita-quality").kind == "local_logit_scorer"


def test_heuristics_on_lima(committed: Engine, data_dir: Path) -> None:
    from app.datasets.importer import import_file

    with transaction() as session:
        dataset = create_dataset(session, "lima")
        import_file(session, dataset, data_dir / "lima" / "lima.json", fmt="lima")
    for scorer in ("lima", "length"):
        job = _score(scorer, dataset="lima")
        assert job.state == JobState.SUCCEEDED.value and job.done == 1029
    lima = _scores("lima")
    assert len(lima) == 1029 and all(0 <= (s.value or 0) <= 1 for s in lima.values())
    assert len(_scores("length")) == 1029


def test_the_same_prompt_twice_in_one_chunk_is_sent_once(server: LLMServer) -> None:
    # Two examples whose rating prompts are identical (same triplet, another source).
    with transaction() as session:
        dataset = create_dataset(session, "pool")
        make_example(session, dataset, 1)
        make_example(session, dataset, 1, content_hash="another-hash-of-the-same-text")
    job = _score("alpagasus")
    assert job.counts["scored"] == 2
    assert _stats(server)["total"] == 1
    assert list(_stats(server)["by_prompt"].values()) == [1]
