"""A generation job through the OpenAI Batch API: each round of the run waits for its batch,
and the run writes what the same run with live calls writes, each request sent once."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from app.datasets.service import create_dataset
from app.generation.service import GenerationSpec, variants_of
from app.models import JobState
from app.platform.config import get_settings
from app.platform.db import transaction
from tests.factories import make_example
from tests.generation.test_runs import _generated, _rewrites, _run
from tests.llm_server import LLMServer

ROUNDS = 3


def test_evol_quality_as_batches_writes_what_live_calls_write(
    committed: Engine, llm: LLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIFT_BATCH_POLL_S", "0.05")
    get_settings.cache_clear()
    with transaction() as session:
        source = create_dataset(session, "answers")
        roots = [
            make_example(session, source, i, {"instruction": text, "output": answer}).id
            for i, (text, answer) in enumerate(
                [("How do I keep basil alive indoors?", "Give it sun and water."),
                 ("Why do cats purr?", "Mostly contentment.")]
            )
        ]  # fmt: skip
    _rewrites(llm)

    job = _run(GenerationSpec("evol-quality", "answers", "better", rounds=ROUNDS, batch=True))

    assert job.state == JobState.SUCCEEDED.value, job.error
    assert job.counts["new"] == 2 * ROUNDS and job.spent_usd == 0  # no budget: nothing charged
    # One batch per round (each rewrite starts from the last), every prompt answered once.
    assert llm.batch_stats() | {"statuses": {}} == {
        "files_uploaded": ROUNDS,
        "batches_created": ROUNDS,
        "lines_answered": 2 * ROUNDS,
        "statuses": {},
    }
    assert llm.stats()["total"] == 2 * ROUNDS
    assert all(count == 1 for count in llm.stats()["by_prompt"].values())
    with transaction() as session:
        side_by_side = variants_of(session, roots[0])
    assert [v.output for v in side_by_side] == [
        "Give it sun and water." + " It also helps to check the details." * k
        for k in range(ROUNDS + 1)
    ]
    assert len(_generated("better")) == 2 * ROUNDS

    # The same run live, into another dataset: everything comes from the response cache.
    live = _run(GenerationSpec("evol-quality", "answers", "again", rounds=ROUNDS))
    assert live.state == JobState.SUCCEEDED.value, live.error
    assert llm.stats()["total"] == 2 * ROUNDS
    outputs = sorted(e.output for e, _ in _generated("better"))
    assert sorted(e.output for e, _ in _generated("again")) == outputs
