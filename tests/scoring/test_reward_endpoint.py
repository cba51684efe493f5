"""`reward` over an endpoint that serves a reward the NVIDIA NIM way, end to end: score jobs
against the real HTTP test server, through Sift's LLM client (cache, retries after
Retry-After, budget); unreadable answers are parse errors, never numbers; the papers'
thresholds as filters."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select

from app.datasets.service import create_dataset
from app.entrypoints.domains import load_every_job_kind
from app.models import Dataset, Example, Job, JobState, LLMCall, Score, ScoreState
from app.platform.config import get_settings
from app.platform.db import transaction
from app.platform.errors import InvalidInput
from app.platform.jobs.dispatch import run_jobs_here
from app.platform.jobs.runner import execute_job
from app.platform.llm.chat import ChatResult
from app.scoring.reward_endpoint import read_attributes, read_reward
from app.scoring.service import find_scorer, start_score_job
from app.selection.service import SelectionSpec, select_ids
from tests.endpoints import configure_endpoint
from tests.factories import make_example
from tests.llm_server import LLMServer, default_reward

load_every_job_kind()

MODEL = "nvidia/llama-3.1-nemotron-70b-reward"
HELPSTEER = "helpfulness=1.25,correctness=0.5,coherence=3.5,complexity=0.5,verbosity=0.75"
# label -> (instruction, output, state, value); None: default_reward of the two texts.
CASES: dict[str, tuple[str, str, ScoreState, float | None]] = {
    "plain": ("Name a colour of the sky.", "Blue, on a clear day; grey under cloud.", ScoreState.OK, None),
    "low": ("Say something.", "Meh. [[reward:-12.5]]", ScoreState.OK, -12.5),
    "middling": ("Add 2 and 2.", "It is 4, [[reward:-3.25]]", ScoreState.OK, -3.25),
    "good": ("Spell cat.", "C, A, T. [[reward:0.75]]", ScoreState.OK, 0.75),
    "helpsteer": ("Greet me.", f"Hello! [[attributes:{HELPSTEER}]]", ScoreState.OK, 1.25),
    "retry-after": ("Wait for it. [[status:429:times=1:retry_after=1]]", "Waited.", ScoreState.OK, None),
    "flaky": ("Try again. [[status:503:times=2]]", "Tried.", ScoreState.OK, None),
    "prose": ("Rate me.", "Fine. [[reply:This answer is quite good overall.]]", ScoreState.PARSE_ERROR, None),
    "nan": ("Divide by zero.", "Undefined. [[reward:nan]]", ScoreState.PARSE_ERROR, None),
    "other": ("Be terse.", "Ok. [[attributes:verbosity=0.1]]", ScoreState.PARSE_ERROR, None),
    "broken": ("Fail. [[status:500:times=99]]", "Never rated.", ScoreState.FAILED, None),
}  # fmt: skip
TURNS = [
    {"role": "user", "content": "Explain why the sky is blue."},
    {"role": "assistant", "content": "Sunlight scatters off small molecules."},
    {"role": "user", "content": "Now in one word."},
    {"role": "assistant", "content": "Scattering."},
]


@pytest.fixture
def server(committed: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[LLMServer]:
    """The test server as the endpoint `rm`, serving a NIM reward model, priced."""
    with LLMServer() as llm:
        configure_endpoint(
            monkeypatch, "rm", base_url=llm.base_url, model=MODEL, price_in="0.01",
            price_out="0.02", timeout_s="0.5", max_attempts="3", concurrency="4",
        )  # fmt: skip
        monkeypatch.setenv("SIFT_SCORE_CHUNK_SIZE", "4")
        get_settings.cache_clear()
        yield llm
    get_settings.cache_clear()


def _dataset() -> dict[str, str]:
    """One example per case and a multi-turn one; content hash -> label."""
    labels = {}
    with transaction() as session:
        dataset = create_dataset(session, "pool")
        for i, (label, (instruction, output, _, _)) in enumerate(CASES.items()):
            record = {"instruction": instruction, "input": "", "output": output}
            labels[make_example(session, dataset, i, record).content_hash] = label
        chat = make_example(
            session, dataset, 99, messages=TURNS, instruction=None, input=None, output=None,
            content_hash="multi-turn-conversation",
        )  # fmt: skip
        labels[chat.content_hash] = "multi-turn"
    return labels


def _score(**options: Any) -> Job:
    with transaction() as session:
        target = session.scalar(select(Dataset).where(Dataset.name == "pool"))
        assert target is not None
        run_jobs_here(session)
        job_id = start_score_job(session, target, "reward", endpoint="rm", **options).id
    execute_job(job_id, inline=True)
    with transaction() as session:
        job = session.get_one(Job, job_id)
        session.expunge(job)
        return job


def _scores() -> dict[str, Score]:
    with transaction() as session:
        scorer = find_scorer(session, "reward")
        rows = session.scalars(select(Score).where(Score.scorer_id == scorer.id)).all()
        for row in rows:
            session.expunge(row)
        return {row.content_hash: row for row in rows}


def test_rewards_from_the_endpoint_are_scores_and_garbage_never_a_number(
    server: LLMServer,
) -> None:
    labels = _dataset()
    job = _score(budget_usd=5.0)
    assert job.state == JobState.SUCCEEDED.value, job.error
    assert 0 < job.spent_usd <= 5.0 and job.counts["retries"] >= 3
    scores = {labels[h]: s for h, s in _scores().items()}
    assert len(scores) == len(CASES) + 1
    for label, (instruction, output, state, value) in CASES.items():
        score = scores[label]
        assert score.state == state.value, (label, score.raw)
        if state != ScoreState.OK:
            assert score.value is None and score.raw, label  # the text or the reason is kept
            continue
        expected = default_reward(instruction, output) if value is None else value
        assert score.value == pytest.approx(expected), label
    assert scores["helpsteer"].details["attribute"] == "helpfulness"
    assert scores["helpsteer"].details["attributes"]["coherence"] == 3.5
    assert scores["prose"].raw == "This answer is quite good overall."
    # The whole conversation is sent, the final answer last, and rated.
    assert scores["multi-turn"].value == pytest.approx(
        default_reward("Now in one word.", "Scattering.")
    )
    with transaction() as session:
        sent = [call.request["messages"] for call in session.scalars(select(LLMCall))]
    assert [[m["role"], m["content"]] for m in TURNS] in sent
    # Retry-After is honoured: the second try came at least a second after the first.
    first, second = server.times(CASES["retry-after"][0])
    assert second - first >= 1.0
    with transaction() as session:
        scorer = find_scorer(session, "reward")
        assert (scorer.kind, scorer.provider, scorer.model) == ("llm_rating", "rm", MODEL)
        assert scorer.params["extra"]["protocol"] == "nvidia-nim-reward"


def test_scoring_again_sends_nothing_and_only_failures_are_retried(server: LLMServer) -> None:
    _dataset()
    first = _score()
    assert first.counts["failed"] == 1
    sent = httpx.get(server.base_url.removesuffix("/v1") + "/_stats").json()["total"]
    again = _score()  # the failed one is asked again (and fails again); nothing else is sent
    assert again.counts.get("scored", 0) == 0 and again.counts["failed"] == 1
    after = httpx.get(server.base_url.removesuffix("/v1") + "/_stats").json()["total"]
    assert after - sent == 3  # max_attempts for the one failed call, no other call


def test_the_papers_thresholds_as_filters(server: LLMServer) -> None:
    labels = _dataset()
    assert _score().state == JobState.SUCCEEDED.value
    ok = {labels[h]: s.value for h, s in _scores().items() if s.value is not None}
    with transaction() as session:
        hashes = dict(session.execute(select(Example.id, Example.content_hash)).all())
        for expression, keep in (("reward>0", lambda v: v > 0), ("reward>-10", lambda v: v > -10)):
            spec = SelectionSpec(dataset="pool", method="threshold", filters=[expression])
            picked = {labels[hashes[i]] for i in select_ids(session, spec)}
            assert picked == {label for label, v in ok.items() if keep(v)}, expression
            assert picked  # each threshold keeps some and drops some here
            assert picked != set(ok)


def test_the_reward_needs_a_model_or_an_endpoint(server: LLMServer) -> None:
    _dataset()
    with transaction() as session, pytest.raises(InvalidInput, match="--endpoint"):
        start_score_job(session, session.scalars(select(Dataset)).one(), "reward")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("reward:-3.28125", -3.28125),
        ("helpfulness:1.6,correctness:1.6,coherence:3.3,complexity:0.5,verbosity:0.5", 1.6),
        (" reward: 2e-3 ", 0.002),
        ("reward:4, and more", None),
        ("reward:inf", None),
        ("4.5", None),
        ("", None),
    ],
)
def test_reading_an_answer(text: str, value: float | None) -> None:
    got, state, _ = read_reward(ChatResult(text=text))
    assert got == (pytest.approx(value) if value is not None else None)
    assert (state == ScoreState.OK) == (value is not None)
    if value is None and text:
        assert isinstance(read_attributes(text), str) or state == ScoreState.PARSE_ERROR
    assert got is None or math.isfinite(got)
