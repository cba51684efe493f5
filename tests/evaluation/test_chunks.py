"""Evaluations end to end against the real OpenAI-compatible test server: two endpoint models,
a judge in both answer orders, every combination of verdicts, errors, cache and budget."""

from __future__ import annotations

import itertools

from sqlalchemy import Engine, func, select

from app.evaluation.chunks import evaluate_chunk
from app.evaluation.service import retry_evaluation
from app.jobs.service import resume_job
from app.models import EvalAnswer, EvalItem, Job, JobChunk, JobState, LLMCall
from app.platform.db import transaction
from app.platform.jobs.dispatch import run_jobs_here
from app.platform.jobs.progress import Progress
from app.platform.jobs.runner import execute_job
from tests.evaluation.conftest import load_run, make_test_set, run_evaluation
from tests.evaluation.test_judge import FASTCHAT
from tests.llm_server import LLMServer

# The winner of one order (by model) -> the judge's first line when A is shown first (order
# ab) and when B is (order ba): AlpaGasus scores assistant 1, then assistant 2.
AB_REPLY = {"a": "8 3", "tie": "5 5", "b": "2 9"}
BA_REPLY = {"a": "3 8", "tie": "6 6", "b": "9 2"}
EXPECTED = {
    ("a", "a"): "win",
    ("a", "tie"): "win",
    ("tie", "a"): "win",
    ("tie", "tie"): "tie",
    ("a", "b"): "tie",
    ("b", "a"): "tie",
    ("b", "b"): "lose",
    ("b", "tie"): "lose",
    ("tie", "b"): "lose",
}
COMBINATIONS = list(itertools.product(("a", "tie", "b"), repeat=2))


def _script_alpagasus(llm: LLMServer, word: str, ab: str, ba: str) -> None:
    """The judge's replies for prompt `word` in both orders."""
    for first, reply in (("alpha", ab), ("beta", ba)):
        pattern = rf"Assistant 1's Answer\]\n{first} answer to {word}\n"
        llm.script(pattern, reply + "\nBoth answers were read with care.", model="judge-model")


def test_every_combination_of_orders_maps_to_its_result(db: Engine, llm: LLMServer) -> None:
    words = [f"q{i}" for i in range(len(COMBINATIONS))]
    for word, (ab, ba) in zip(words, COMBINATIONS, strict=True):
        _script_alpagasus(llm, word, AB_REPLY[ab], BA_REPLY[ba])
    # q9: unreadable in one order; q10: a judge call that fails every attempt.
    _script_alpagasus(llm, "q9", "Assistant 1 is clearly better.", "3 8")
    llm.script(r"^(q10)", "alpha answer to q10 [[status:500:times=99]]", model="alpha-model")
    make_test_set("combos", [f"{w} Tell me something." for w in [*words, "q9", "q10"]])

    run, job, items = load_run(run_evaluation("combos"))

    assert job.state == JobState.SUCCEEDED.value
    for i, combination in enumerate(COMBINATIONS, 1):
        item = items[f"p{i}"]
        assert (item.verdict_ab, item.verdict_ba) == combination
        assert item.verdict == EXPECTED[combination], combination
        assert item.state == "ok"
        assert item.answers_a == [f"alpha answer to q{i - 1}"]
        assert item.answers_b == [f"beta answer to q{i - 1}"]
        assert item.judge_ab is not None and item.judge_ab.endswith("read with care.")
    unreadable, failed = items["p10"], items["p11"]
    assert (unreadable.state, unreadable.verdict) == ("parse_error", "error")
    assert unreadable.verdict_ab == "error" and unreadable.verdict_ba == "a"
    assert unreadable.error is not None and "unreadable AlpaGasus verdict" in unreadable.error
    assert (failed.state, failed.verdict) == ("failed", "error")
    assert failed.error is not None and "HTTP 500" in failed.error
    # Wins: 3, ties: 3, losses: 3, and two errors that are never counted as ties.
    assert (run.wins, run.ties, run.losses, run.errors) == (3, 3, 3, 2)
    assert job.counts["wins"] == 3 and job.counts["unreadable"] == 1
    assert job.counts["failed_prompts"] == 1


def test_answers_and_verdicts_are_never_asked_twice(db: Engine, llm: LLMServer) -> None:
    _script_alpagasus(llm, "one", "8 3", "3 8")
    _script_alpagasus(llm, "two", "5 5", "5 5")
    make_test_set("twice", ["one Hello?", "two Goodbye?"])
    first = run_evaluation("twice")
    sent = llm.stats()["total"]
    assert sent == 2 * 2 + 2 * 2  # two answers and two verdicts per prompt

    second = run_evaluation("twice")

    assert llm.stats()["total"] == sent
    assert load_run(second)[0].wins == load_run(first)[0].wins == 1
    with transaction() as session:
        assert session.scalar(select(func.count()).select_from(EvalAnswer)) == 4


def test_an_evaluation_run_twice_writes_nothing_twice(db: Engine, llm: LLMServer) -> None:
    _script_alpagasus(llm, "one", "8 3", "3 8")
    make_test_set("again", ["one Hello?"])
    run_id = run_evaluation("again")
    sent = llm.stats()["total"]
    with transaction() as session:  # the same chunk delivered again
        job = session.get(Job, load_run(run_id)[1].id)
        assert job is not None
        chunk = session.scalars(select(JobChunk).where(JobChunk.job_id == job.id)).one()
        counts = evaluate_chunk(session, job, chunk.params, Progress(job.id, durable=False))
    assert counts["wins"] == counts["sent"] == 0
    with transaction() as session:  # and the whole evaluation again
        run_jobs_here(session)
        job_id = retry_evaluation(session, run_id).id
    execute_job(job_id, inline=True)

    with transaction() as session:
        assert session.scalar(select(func.count()).where(EvalItem.run_id == run_id)) == 1
    run, job, _ = load_run(run_id)
    assert (run.wins, job.id, job.state) == (1, job_id, JobState.SUCCEEDED.value)
    assert llm.stats()["total"] == sent


def test_a_failed_call_is_tried_again_by_the_next_run(db: Engine, llm: LLMServer) -> None:
    # Every judge call on A's answer fails twice (each attempt of the first run), then works.
    llm.script(r"^(one)", "alpha answer to one [[status:503:times=2]]", model="alpha-model")
    for first, reply in (("alpha", "8 3"), ("beta", "3 8")):
        llm.script(rf"1's Answer\]\n{first} answer to one", reply, model="judge-model")
    make_test_set("flaky", ["one Hello?"])
    run_id = run_evaluation("flaky")
    run, job, items = load_run(run_id)
    assert items["p1"].state == "failed" and run.errors == 1
    assert job.state == JobState.SUCCEEDED.value

    with transaction() as session:
        run_jobs_here(session)
        job_id = retry_evaluation(session, run_id).id
    execute_job(job_id, inline=True)

    run, job, items = load_run(run_id)
    assert job.id == job_id
    assert (items["p1"].state, items["p1"].verdict) == ("ok", "win")
    assert (run.wins, run.errors, run.state) == (1, 0, "succeeded")
    assert llm.count("one Hello?") == 2  # one answer from each model, never asked again


def test_a_spent_budget_pauses_and_resumes(db: Engine, llm: LLMServer) -> None:
    budget = 0.000001  # less than any call can cost
    _script_alpagasus(llm, "one", "8 3", "3 8")
    make_test_set("budget", ["one Hello?"])
    run_id = run_evaluation("budget", budget_usd=budget)
    _run, job, items = load_run(run_id)
    assert job.state == JobState.PAUSED_BUDGET.value
    assert items == {}
    assert llm.stats()["total"] == 0  # nothing is sent that the budget cannot cover

    with transaction() as session:
        run_jobs_here(session)
        resume_job(session, job.id, budget_usd=1.0)
    execute_job(job.id, inline=True)
    _, job, items = load_run(run_id)
    assert job.state == JobState.SUCCEEDED.value
    assert items["p1"].verdict == "win"
    assert 0 < job.spent_usd <= 1.0


def test_two_turn_prompts_are_judged_with_pair_v2_multi_turn(db: Engine, llm: LLMServer) -> None:
    llm.script(r"^(\S+)", "alpha first answer", model="alpha-model")
    llm.script(r"^(\S+)", "beta first answer", model="beta-model")
    llm.script(r"^second (\S+)", r"alpha answers \1", model="alpha-model")
    llm.script(r"^second (\S+)", r"beta answers \1", model="beta-model")
    verdicts = {"ab": "[[A]]", "ba": "[[B]]"}
    for order, shown_first in (("ab", "alpha"), ("ba", "beta")):
        llm.script(
            rf"### Assistant A:\n{shown_first} answers again\n",
            f"Assistant A kept the thread better. My final verdict: {verdicts[order]}",
            model="judge-model",
        )
    make_test_set("mt", [["first question", "second again"]])

    run, _, items = load_run(run_evaluation("mt"))

    assert run.params["judge_prompt"] == "mt-bench"
    item = items["p1"]
    assert item.answers_a == ["alpha first answer", "alpha answers again"]
    assert item.answers_b == ["beta first answer", "beta answers again"]
    assert (item.verdict_ab, item.verdict_ba, item.verdict) == ("a", "a", "win")
    with transaction() as session:
        asked = session.scalars(select(LLMCall.request).where(LLMCall.model == "judge-model"))
        systems = {request["messages"][0][1] for request in asked}
    assert systems == {FASTCHAT["pair-v2-multi-turn"]["system_prompt"]}
