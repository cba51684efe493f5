"""Datasets service: names, listing, keyset pages, and edits with optimistic locking."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.datasets import service
from app.datasets.records import content_hash
from app.datasets.service import ExampleFilter
from app.models import Dataset, Example, Job, Revision
from app.platform.errors import Conflict, InvalidInput, NotFound, PreconditionRequired
from app.platform.jobs.dispatch import run_jobs_here
from tests.factories import make_dataset, make_example, make_user, unique

# ---------------------------------------------------------------- datasets


def test_create_and_get_dataset(session: Session) -> None:
    user = make_user(session, "lead")
    name = unique("pool")
    dataset = service.create_dataset(session, f"  {name} ", "a pool", user)
    assert dataset.name == name and dataset.created_by_id == user.id
    assert service.get_dataset(session, name).id == dataset.id
    assert service.get_or_create_dataset(session, name).id == dataset.id
    assert service.get_or_create_dataset(session, unique("new")).id != dataset.id


def test_dataset_names_are_unique_and_printable(session: Session) -> None:
    name = make_dataset(session).name
    with pytest.raises(Conflict, match="exists already"):
        service.create_dataset(session, name)
    for bad in ("", "   ", "tab\there", "x" * 201):
        with pytest.raises(InvalidInput):
            service.create_dataset(session, bad)
    with pytest.raises(NotFound):
        service.get_dataset(session, unique("missing"))


def test_list_datasets_counts_examples(session: Session) -> None:
    full, empty = make_dataset(session), make_dataset(session)
    for i in range(3):
        make_example(session, full, i)
    counts = {d.name: n for d, n in service.list_datasets(session)}
    assert counts[full.name] == 3 and counts[empty.name] == 0
    assert service.count_examples(session, full) == 3


# ---------------------------------------------------------------- keyset pages


def walk(session: Session, dataset: Dataset, filters: ExampleFilter, limit: int) -> list[list[int]]:
    pages, after = [], None
    while True:
        rows, after = service.list_examples(session, dataset, filters, after=after, limit=limit)
        pages.append([row.id for row in rows])
        if after is None:
            return pages
        assert after == rows[-1].id


def test_list_examples_walks_every_page_without_gaps(session: Session) -> None:
    dataset = make_dataset(session)
    ids = [make_example(session, dataset, i).id for i in range(7)]
    make_example(session, make_dataset(session), 100)  # another dataset's example stays out
    pages = walk(session, dataset, ExampleFilter(), 3)
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [i for p in pages for i in p] == ids
    # An exact multiple of the page size ends without an empty page.
    assert walk(session, dataset, ExampleFilter(), 7) == [ids]


def test_list_examples_filters(session: Session) -> None:
    dataset = make_dataset(session)
    rows = [make_example(session, dataset, i) for i in range(6)]
    rows[1].source = rows[4].source = "wikihow"
    rows[2].status = rows[4].status = "accepted"
    session.flush()

    def ids(**filters: str) -> list[int]:
        found, _ = service.list_examples(session, dataset, ExampleFilter(**filters), limit=50)
        return [row.id for row in found]

    assert ids(source="wikihow") == [rows[1].id, rows[4].id]
    assert ids(status="accepted") == [rows[2].id, rows[4].id]
    assert ids(source="wikihow", status="accepted") == [rows[4].id]
    assert ids(q="number 3") == [rows[3].id]
    assert ids(q="NUMBER 5") == [rows[5].id]
    assert ids(q="no such text") == []
    with pytest.raises(InvalidInput, match="unknown status 'maybe'"):
        ids(status="maybe")


def test_list_examples_search_treats_wildcards_as_text(session: Session) -> None:
    dataset = make_dataset(session)
    plain = make_example(session, dataset, 3)
    literal = make_example(
        session, dataset, 100, record={"output": "Use snake_case, 100% of the time."}
    )

    def ids(q: str) -> list[int]:
        found, _ = service.list_examples(session, dataset, ExampleFilter(q=q), limit=50)
        return [row.id for row in found]

    assert ids("snake_case") == [literal.id]
    assert ids("100%") == [literal.id]
    # Words, not LIKE patterns: "_" and "%" separate words ("number_3" is "number 3"), and a
    # search with no word at all is looked for as it was typed.
    assert ids("number_3") == [plain.id]
    assert ids("number_4") == []
    assert ids("%") == [literal.id]
    assert plain.id not in ids("r%3")


def test_search_finds_words_in_any_order_and_the_last_as_a_prefix(session: Session) -> None:
    dataset = make_dataset(session)
    rows = [
        make_example(session, dataset, record={"instruction": text, "output": "ok"})
        for text in (
            "Explain photosynthesis to a child.",
            "Convert 3.5 miles to kilometres.",
            "Write an e-mail to my landlord.",
            "Ein naïve Café in Zürich.",
        )
    ]

    def ids(q: str) -> list[int]:
        found, _ = service.list_examples(session, dataset, ExampleFilter(q=q), limit=50)
        return [row.id for row in found]

    assert ids("photo") == [rows[0].id]
    assert ids("child explain") == [rows[0].id]
    assert ids("EXPLAIN photosynth") == [rows[0].id]
    assert ids("explain planet") == []
    assert ids("3.5 miles") == [rows[1].id]
    assert ids("e-mail landl") == [rows[2].id]
    assert ids("café zür") == [rows[3].id]
    assert ids("ok") == [r.id for r in rows]


def test_search_uses_the_full_text_index(session: Session) -> None:
    dataset = make_dataset(session)
    make_example(session, dataset, 1)
    query = select(Example.id).where(service.search_condition("number 1"))
    sql = query.compile(dialect=session.get_bind().dialect, compile_kwargs={"literal_binds": True})
    # A handful of rows: the planner would rather scan; say that it cannot.
    connection = session.connection()
    connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
    connection.exec_driver_sql("SET LOCAL enable_indexscan = off")
    plan = "\n".join(row[0] for row in connection.exec_driver_sql(f"EXPLAIN {sql}"))
    assert "ix_examples_search" in plan, plan


def test_list_examples_clamps_the_limit(session: Session) -> None:
    dataset = make_dataset(session)
    for i in range(3):
        make_example(session, dataset, i)
    rows, after = service.list_examples(session, dataset, ExampleFilter(), limit=0)
    assert len(rows) == 1 and after == rows[0].id


# ---------------------------------------------------------------- edits


def test_update_example_needs_a_version(session: Session) -> None:
    example = make_example(session, make_dataset(session))
    with pytest.raises(PreconditionRequired):
        service.update_example(session, example.id, None, {"output": "x"}, None)


def test_update_example_refuses_a_stale_version(session: Session) -> None:
    example = make_example(session, make_dataset(session))
    with pytest.raises(Conflict) as caught:
        service.update_example(session, example.id, example.version + 5, {"output": "x"}, None)
    assert caught.value.status_code == 409
    assert caught.value.detail["current_version"] == example.version
    assert caught.value.detail["current"]["output"] == example.output


def test_update_example_unknown_id(session: Session) -> None:
    with pytest.raises(NotFound):
        service.update_example(session, 10**12, 1, {"output": "x"}, None)


def test_update_output_bumps_the_version_rewrites_messages_and_writes_a_revision(
    session: Session,
) -> None:
    user = make_user(session)
    example = make_example(session, make_dataset(session))
    old_output, old_hash = example.output, example.content_hash
    updated = service.update_example(session, example.id, 1, {"output": "Better."}, user, "typo")
    session.flush()
    assert updated.version == 2
    assert updated.output == "Better."
    assert updated.messages[-1] == {"role": "assistant", "content": "Better."}
    assert updated.content_hash == content_hash(updated.messages) != old_hash
    (revision,) = session.scalars(select(Revision).where(Revision.example_id == example.id)).all()
    assert (revision.user_id, revision.version, revision.reason) == (user.id, 2, "typo")
    assert revision.before["output"] == old_output
    assert revision.after["output"] == "Better."
    # The old version is stale now.
    with pytest.raises(Conflict):
        service.update_example(session, example.id, 1, {"output": "Again."}, user)


def test_update_instruction_and_input_rebuild_the_prompt(session: Session) -> None:
    example = make_example(session, make_dataset(session))
    service.update_example(session, example.id, 1, {"instruction": "Add.", "input": "1 + 1"}, None)
    assert example.messages[0] == {"role": "user", "content": "Add.\n\n1 + 1"}


def test_update_messages_of_a_single_turn_example(session: Session) -> None:
    example = make_example(session, make_dataset(session))
    messages = [
        {"role": "user", "content": "New question"},
        {"role": "assistant", "content": "New answer"},
    ]
    service.update_example(session, example.id, 1, {"messages": messages}, None)
    assert (example.instruction, example.input, example.output) == (
        "New question",
        None,
        "New answer",
    )
    with pytest.raises(InvalidInput, match="does not end with an assistant response"):
        service.update_example(
            session, example.id, example.version, {"messages": messages[:1]}, None
        )


def test_update_to_content_another_example_has_is_a_conflict(session: Session) -> None:
    dataset = make_dataset(session)
    first, second = make_example(session, dataset, 1), make_example(session, dataset, 2)
    with pytest.raises(Conflict) as caught:
        service.update_example(
            session, second.id, 1, {"instruction": first.instruction, "output": first.output}, None
        )
    assert caught.value.detail["duplicate_of"] == first.id


def test_update_status_and_unknown_fields(session: Session) -> None:
    example = make_example(session, make_dataset(session))
    service.update_example(session, example.id, 1, {"status": "accepted"}, None)
    session.flush()
    assert (example.status, example.version) == ("accepted", 2)
    with pytest.raises(InvalidInput, match="unknown status"):
        service.update_example(session, example.id, 2, {"status": "great"}, None)
    with pytest.raises(InvalidInput, match="cannot be edited: content_hash"):
        service.update_example(session, example.id, 2, {"content_hash": "x"}, None)


def test_a_no_op_edit_writes_no_revision(session: Session) -> None:
    example = make_example(session, make_dataset(session))
    service.update_example(session, example.id, 1, {"output": example.output}, None)
    session.flush()
    assert example.version == 1
    assert session.scalars(select(Revision).where(Revision.example_id == example.id)).all() == []


def test_start_import_job_is_queued_with_its_parameters(session: Session, tmp_path: Path) -> None:
    dataset = make_dataset(session)
    run_jobs_here(session)
    job = service.start_import_job(
        session,
        dataset,
        tmp_path / "x.json",
        fmt="alpaca",
        skip_invalid=True,
        source="s",
        mapping={"output": "answer"},
    )
    stored = session.get(Job, job.id)
    assert (stored.kind, stored.queue, stored.state, stored.dataset_id) == (
        "import",
        "cpu",
        "queued",
        dataset.id,
    )
    assert stored.params == {
        "path": str(tmp_path / "x.json"),
        "format": "alpaca",
        "skip_invalid": True,
        "source": "s",
        "mapping": {"output": "answer"},
    }
    assert session.scalar(select(Example.id).where(Example.dataset_id == dataset.id)) is None
