"""A pairwise evaluation through the OpenAI Batch API: the endpoints' answers go out as one
batch per endpoint, then the judge's calls in both orders as one more; the verdicts are those
of live calls, and a live run afterwards finds every answer in the response cache."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from app.models import JobState
from app.platform.config import get_settings
from tests.evaluation.conftest import load_run, make_test_set, run_evaluation
from tests.evaluation.test_chunks import (
    AB_REPLY,
    BA_REPLY,
    COMBINATIONS,
    EXPECTED,
    _script_alpagasus,
)
from tests.llm_server import LLMServer


def test_a_batch_evaluation_gives_the_live_verdicts(
    db: Engine, llm: LLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIFT_BATCH_POLL_S", "0.05")
    get_settings.cache_clear()
    words = [f"q{i}" for i in range(len(COMBINATIONS))]
    for word, (ab, ba) in zip(words, COMBINATIONS, strict=True):
        _script_alpagasus(llm, word, AB_REPLY[ab], BA_REPLY[ba])
    # q9: alpha's answer makes every judge call about it fail.
    llm.script(r"^(q9)", "alpha answer to q9 [[status:500:times=99]]", model="alpha-model")
    make_test_set("combos", [f"{w} Tell me something." for w in [*words, "q9"]])

    run, job, items = load_run(run_evaluation("combos", batch=True))

    assert job.state == JobState.SUCCEEDED.value, job.error
    for i, combination in enumerate(COMBINATIONS, 1):
        item = items[f"p{i}"]
        assert (item.verdict_ab, item.verdict_ba, item.verdict) == (
            *combination,
            EXPECTED[combination],
        )
        assert item.answers_a == [f"alpha answer to q{i - 1}"]
        assert item.judge_ab is not None and item.judge_ab.endswith("read with care.")
    failed = items["p10"]
    assert (failed.state, failed.verdict) == ("failed", "error")
    assert failed.error is not None and "HTTP 500" in failed.error and "batch" in failed.error
    assert (run.wins, run.ties, run.losses, run.errors) == (3, 3, 3, 1)
    # Round one: alpha's and beta's answers, a batch each; round two: the judge, both orders.
    prompts = len(COMBINATIONS) + 1
    stats = llm.batch_stats()
    assert (stats["batches_created"], stats["lines_answered"]) == (3, 4 * prompts)
    assert llm.stats()["total"] == 4 * prompts  # nothing live
    counts = job.counts
    assert (counts["batched"], counts["failed"], counts["sent"]) == (4 * prompts - 2, 2, 0)

    # The same evaluation live: only the two failed judge calls go out again (twice each).
    again, _, _ = load_run(run_evaluation("combos"))
    assert (again.wins, again.ties, again.losses, again.errors) == (3, 3, 3, 1)
    assert llm.stats()["total"] == 4 * prompts + 4
