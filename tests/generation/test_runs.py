"""Generation jobs end to end against the real HTTP test server, on both backends: exactly the
right instructions are admitted, eliminations follow WizardLM's rules, and a run paused by its
budget resumes without sending anything twice."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from app.datasets.service import create_dataset, get_dataset
from app.entrypoints.domains import load_every_job_kind
from app.generation.methods import SelfInstructSpec, alpaca_prompts
from app.generation.prompts import EVOL_INSTRUCT_METHODS, Task
from app.generation.service import (
    GenerationSpec,
    seed_dataset,
    source_tasks,
    start_generation,
    variants_of,
)
from app.jobs.service import resume_job
from app.models import Example, Job, JobState, Provenance
from app.platform.db import transaction
from app.platform.jobs.dispatch import run_jobs_here
from app.platform.jobs.runner import execute_job
from tests.factories import make_example
from tests.llm_server import CUT_OFF, LLMServer

load_every_job_kind()

# Continuations of Alpaca prompts that show three seed tasks (the model writes from task 4).
FIRST = """ Suggest three ways to reduce household food waste.
4. Input:
<noinput>
4. Output:
Plan meals ahead, store food properly and compost scraps.
###
5. Instruction: Draw a picture of a cat sitting on a windowsill.
5. Input:
<noinput>
5. Output:
A sketch.
###
6. Instruction: Recommend some relaxing music for studying late at night.
6. Input:
<noinput>
6. Output:
Lo-fi beats and slow piano.
###
7. Instruction: Write a program that prints the first ten prime numbers.
7. Input:
<noinput>
7. Output:
print([2, 3, 5, 7, 11, 13, 17, 19, 23, 29])
###
8. Instruction: "Explain why the sky appears blue during the day."
8. Input:
<noinput>
8. Output:
Rayleigh scattering.
###
9. Instruction: Éxplain the rules of chess to a complete beginner.
9. Input:
<noinput>
9. Output:
Each piece moves its own way.
###
10. Instruction: Sort these numbers.
10. Input:
5, 2, 9
10. Output:
2, 5, 9
###
11. Instruction: Summarize the plot of Romeo and Juliet in two sentences.
11. Output:
Two young lovers defy their feuding families.
###
12. Instruction: Is there anything I can eat for a lunch that doesn't include eggs, yet includes protein, and has roughly 700-1000 calories?
12. Input:
<noinput>
12. Output:
A chicken salad with quinoa.
###
13. Instruction: Compose a haiku about the first snowfall of winter.
13. Input:
<noinput>
13. Output:
Soft white silence falls."""
SECOND = (
    """ Suggest three ways to reduce food waste at home.
4. Input:
<noinput>
4. Output:
Buy less, freeze leftovers.
###
5. Instruction: Name three famous paintings by Vincent van Gogh.
5. Input:
<noinput>
5. Output:
The Starry Night, Sunflowers and The Potato Eaters.
###
6. Instruction: Describe how photosynthesis turns sunlight into chemical energy.
6. Input:
<noinput>
6. Output:
Plants capture light"""
    + CUT_OFF
)


def _run(spec: GenerationSpec) -> Job:
    with transaction() as session:
        run_jobs_here(session)
        job_id = start_generation(session, spec).id
    execute_job(job_id, inline=True)
    return _job(job_id)


def _job(job_id: int) -> Job:
    with transaction() as session:
        job = session.get(Job, job_id)
        assert job is not None
        session.expunge(job)
        return job


def _generated(dataset: str) -> list[tuple[Example, Provenance | None]]:
    with transaction() as session:
        rows = session.execute(
            select(Example, Provenance)
            .outerjoin(Provenance, Provenance.example_id == Example.id)
            .where(Example.dataset_id == get_dataset(session, dataset).id)
            .order_by(Example.id)
        ).all()
        for example, provenance in rows:
            session.expunge(example)
            if provenance is not None:
                session.expunge(provenance)
        return [(example, provenance) for example, provenance in rows]


def test_alpaca_run_admits_exactly_the_right_instructions(
    committed: Engine, llm: LLMServer, data_dir: Path
) -> None:
    with transaction() as session:
        seeds = seed_dataset(session, data_dir / "alpaca" / "seed_tasks.jsonl")
        rows = source_tasks(session, seeds.id, 10**12, None)
    assert len(rows) == 175
    tasks = [Task(r[1], r[2], r[3]) for r in rows]
    first, second = alpaca_prompts(SelfInstructSpec(n=3), tasks, 2)
    llm.script(re.escape(first) + r"\Z", FIRST)
    llm.script(re.escape(second) + r"\Z", SECOND)

    job = _run(GenerationSpec("self-instruct", seeds.name, "grown", n=3))

    assert job.state == JobState.SUCCEEDED.value, job.error
    generated = _generated("grown")
    assert [e.instruction for e, _ in generated] == [
        "Suggest three ways to reduce household food waste.",
        "Compose a haiku about the first snowfall of winter.",
        "Name three famous paintings by Vincent van Gogh.",
    ]
    assert [e.output for e, _ in generated][2] == (
        "The Starry Night, Sunflowers and The Potato Eaters."
    )
    for (example, provenance), prompt in zip(generated, [first, first, second], strict=True):
        assert example.origin == "generated" and example.status == "candidate"
        assert provenance is not None
        assert (provenance.method, provenance.round, provenance.parent_example_id) == (
            "self-instruct",
            1,
            None,
        )
        assert (provenance.prompt, provenance.endpoint, provenance.model) == (
            prompt,
            "default",
            "test-model",
        )
        assert provenance.job_id == job.id and provenance.details == {"variant": "alpaca"}
    counts = job.counts
    assert (counts["generated"], counts["new"], job.done, job.total) == (3, 3, 3, 3)
    assert counts["rejected blacklisted word"] == 2  # picture, music
    assert counts["rejected starts with 'Write a program'"] == 1
    assert counts["rejected starts with punctuation"] == 1
    assert counts["rejected starts with a non-ASCII character"] == 1
    assert counts["rejected too short"] == 1
    assert counts["rejected near-duplicate"] == 2  # of seed 0, and of this run's first task
    assert counts["rejected cut off"] == 1
    # Romeo and Juliet (no input), and the three unscripted answers of the first batch.
    assert counts["rejected malformed"] == 4
    assert llm.stats()["total"] == 5  # one batch of Alpaca's request_batch_size


def _evolve_script(llm: LLMServer, parent: str, evolved: str, answer: str, verdict: str) -> None:
    llm.script(r"Prompt#: \r\n " + re.escape(parent) + r" \r\n#", evolved)
    llm.script("^" + re.escape(evolved) + r"\Z", answer)
    llm.script("The Second Prompt: " + re.escape(evolved) + "\n", verdict)


EVOLUTIONS: dict[str, tuple[str, str, str]] = {
    "Describe the water cycle.": (
        "#Rewritten Prompt#: Describe the water cycle in a desert.",
        "Rain is rare.",
        "Not Equal",
    ),
    "Give a short history of the printing press.": (
        "Give a detailed history of the printing press before 1500.",
        "Sorry, I can't help with that.",
        "Not Equal",
    ),
    "Name the largest moons of Jupiter.": (
        "Name the four largest moons of Jupiter and who found them.",
        "It is what it is.",
        "Not Equal",
    ),
    "Summarise the causes of the First World War.": (
        "Summarise the causes of the First World War, please.",
        "Alliances, militarism, imperialism and nationalism.",
        "Equal",
    ),
    "List three uses of copper.": ("List three uses of copper in" + CUT_OFF, "", "Not Equal"),
}
KEPT = (
    "Explain how vaccines train the immune system.",
    "Explain how mRNA vaccines train the immune system to recognise a new virus.",
    "Explain, in three numbered steps, how mRNA vaccines train the immune system to recognise "
    "a new virus and why boosters help.",
)


def test_evol_instruct_keeps_survivors_and_eliminates_by_wizardlm_rules(
    committed: Engine, llm: LLMServer
) -> None:
    with transaction() as session:
        source = create_dataset(session, "prompts")
        ids = {}
        for i, text in enumerate([KEPT[0], *EVOLUTIONS]):
            ids[text] = make_example(session, source, i, {"instruction": text}).id
    for parent, (evolved, answer, verdict) in EVOLUTIONS.items():
        _evolve_script(llm, parent, evolved, answer, verdict)
    _evolve_script(
        llm, KEPT[0], KEPT[1], "mRNA carries the recipe for a spike protein.", "Not Equal"
    )
    _evolve_script(llm, KEPT[1], KEPT[2], "1. Cells read the mRNA. 2. ... 3. ...", "Not Equal")

    job = _run(GenerationSpec("evol-instruct", "prompts", "evolved", rounds=2))

    assert job.state == JobState.SUCCEEDED.value, job.error
    generated = _generated("evolved")
    assert [(e.instruction, e.input, e.output) for e, _ in generated] == [
        (KEPT[1], "", "mRNA carries the recipe for a spike protein."),
        (KEPT[2], "", "1. Cells read the mRNA. 2. ... 3. ..."),
    ]
    (first, one), (_, two) = generated
    assert one is not None and two is not None
    assert (one.round, one.parent_example_id) == (1, ids[KEPT[0]])
    assert (two.round, two.parent_example_id) == (2, first.id)
    assert KEPT[0] in one.prompt and KEPT[1] in two.prompt
    assert one.details["operation"] in EVOL_INSTRUCT_METHODS
    counts = job.counts
    # Each eliminated parent stays in the pool and fails again in round 2.
    assert counts["generated"] == 2 and job.done == job.total == 12
    assert counts["rejected copies the evolving prompt"] == 2
    assert counts["rejected the model failed to answer"] == 2
    assert counts["rejected the answer is only punctuation and stop words"] == 2
    assert counts["rejected no information gain"] == 2
    assert counts["rejected the rewrite was cut off"] == 2


def _rewrites(llm: LLMServer) -> None:
    """Every Evol-Quality rewrite adds a sentence to the answer it was given."""
    llm.script(
        r"#Given Response#:\n(.*)\n#Rewritten Response#:\n\Z",
        r"\1 It also helps to check the details.",
    )


def test_evol_quality_pauses_on_its_budget_and_resumes_without_sending_twice(
    committed: Engine, llm: LLMServer
) -> None:
    with transaction() as session:
        source = create_dataset(session, "answers")
        roots = [
            make_example(session, source, i, {"instruction": text, "output": answer}).id
            for i, (text, answer) in enumerate(
                [
                    ("How do I keep basil alive indoors?", "Give it sun and water."),
                    ("Why do cats purr?", "Mostly contentment."),
                ]
            )
        ]
    _rewrites(llm)
    spec = GenerationSpec("evol-quality", "answers", "better", rounds=3, budget_usd=0.06)

    paused = _run(spec)

    assert paused.state == JobState.PAUSED_BUDGET.value, paused.error
    kept = len(_generated("better"))
    assert 0 < kept < 6
    with transaction() as session:
        run_jobs_here(session)
        resume_job(session, paused.id, budget_usd=5.0)
    execute_job(paused.id, inline=True)

    done = _job(paused.id)
    assert done.state == JobState.SUCCEEDED.value, done.error
    generated = _generated("better")
    assert len(generated) == 6 and done.counts["new"] == 6 - kept
    # Every rewrite prompt reached the server once: the resumed run took the rest from the cache.
    assert all(count == 1 for count in llm.stats()["by_prompt"].values())
    assert llm.stats()["total"] == 6
    assert done.spent_usd <= 5.0 and paused.spent_usd <= 0.06
    with transaction() as session:
        side_by_side = variants_of(session, roots[0])
        # The same group, side by side, from any of its members.
        assert variants_of(session, side_by_side[2].example_id) == side_by_side
    assert [v.round for v in side_by_side] == [0, 1, 2, 3]
    assert [v.output for v in side_by_side] == [
        "Give it sun and water." + " It also helps to check the details." * k for k in range(4)
    ]
    chain: dict[int, Any] = {e.id: p for e, p in generated}
    for variant in side_by_side[1:]:
        provenance = chain[variant.example_id]
        assert provenance.variant_group == roots[0] and provenance.method == "evol-quality"
        assert provenance.details["operation"] == variant.operation
    assert chain[side_by_side[1].example_id].parent_example_id == roots[0]
    assert chain[side_by_side[2].example_id].parent_example_id == side_by_side[1].example_id


def test_failed_calls_generate_nothing(committed: Engine, llm: LLMServer) -> None:
    with transaction() as session:
        source = create_dataset(session, "broken")
        make_example(session, source, 1, {"instruction": "Name a river. [[status:500:times=99]]"})
    job = _run(GenerationSpec("evol-quality", "broken", "nothing", rounds=1))
    assert job.state == JobState.SUCCEEDED.value
    assert job.counts["generated"] == 0 and job.counts["rejected failed call"] == 1
    assert _generated("nothing") == []
