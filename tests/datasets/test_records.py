"""Record formats: parsing and validating each format, detecting it, hashing, writing back."""

from __future__ import annotations

from typing import Any

import pytest

from app.datasets.parsers import (
    PARSERS,
    detect_format,
    parse_alpaca,
    parse_dolly,
    parse_openai,
    parse_sharegpt,
    parse_sift,
)
from app.datasets.records import ExampleDraft, RecordError, content_hash, join_prompt
from app.datasets.writers import ExampleView, to_alpaca, to_dolly, to_openai, to_sharegpt, to_sift


def view(draft: ExampleDraft, example_id: int = 7) -> ExampleView:
    """What the exporter would hand a writer for an example imported from `draft`."""
    return ExampleView(
        id=example_id,
        messages=draft.messages,
        instruction=draft.instruction,
        input=draft.input,
        output=draft.output,
        source=draft.source,
        category=draft.category,
        external_id=draft.external_id,
        meta=draft.meta,
        source_format=draft.source_format,
        source_keys=draft.source_keys,
        content_hash=draft.content_hash,
        status="candidate",
        origin="import",
    )


def sharegpt(*turns: tuple[str, str], **extra: Any) -> dict[str, Any]:
    return {"conversations": [{"from": s, "value": v} for s, v in turns], **extra}


# ---------------------------------------------------------------- parsers


def test_alpaca_record_becomes_a_user_and_an_assistant_turn() -> None:
    draft = parse_alpaca({"instruction": "Add.", "input": "2 + 2", "output": "4"})
    assert draft.messages == [
        {"role": "user", "content": "Add.\n\n2 + 2"},
        {"role": "assistant", "content": "4"},
    ]
    assert (draft.instruction, draft.input, draft.output) == ("Add.", "2 + 2", "4")
    assert draft.source_format == "alpaca"
    assert draft.source_keys == ["instruction", "input", "output"]
    assert draft.content_hash == content_hash(draft.messages)


def test_alpaca_without_input_uses_the_instruction_alone() -> None:
    draft = parse_alpaca({"instruction": "Say hi.", "input": "", "output": "Hi."})
    assert draft.messages[0] == {"role": "user", "content": "Say hi."}


def test_alpaca_keeps_system_history_category_and_unknown_fields() -> None:
    record = {
        "instruction": "And then?",
        "input": "",
        "output": "Then stop.",
        "history": [["Start.", "Started."]],
        "system": "Be brief.",
        "category": "open_qa",
        "source": "wiki",
        "rating": 4.5,
    }
    draft = PARSERS["lima"](record)
    assert draft.source_format == "lima"
    assert [m["role"] for m in draft.messages] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
    ]
    assert draft.messages[1]["content"] == "Start."
    assert draft.messages[-1]["content"] == "Then stop."
    assert (draft.category, draft.source) == ("open_qa", "wiki")
    assert draft.meta == {"rating": 4.5}


def test_alpaca_keeps_an_empty_answer() -> None:
    assert parse_alpaca({"instruction": "Nothing?", "output": ""}).output == ""


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"instruction": "No answer."}, "field 'output' is missing"),
        ({"instruction": "Count.", "output": 5}, "field 'output' must be a string, got a number"),
        ({"instruction": "  ", "output": "x"}, "field 'instruction' is empty"),
        ({"output": "x"}, "field 'instruction' is missing"),
        ({"instruction": "x", "input": ["a"], "output": "y"}, "field 'input' must be a string"),
        ({"instruction": "x", "output": "y", "history": "no"}, "field 'history' must be a list"),
        ({"instruction": "x", "output": "y", "history": [["only one"]]}, "history' turn 1"),
    ],
)
def test_alpaca_errors_name_the_field(record: dict[str, Any], reason: str) -> None:
    with pytest.raises(RecordError, match=reason):
        parse_alpaca(record)


def test_dolly_context_is_the_input() -> None:
    record = {
        "instruction": "Sum up.",
        "context": "A text.",
        "response": "Short.",
        "category": "summarization",
    }
    draft = parse_dolly(record)
    assert draft.source_format == "dolly"
    assert draft.messages[0]["content"] == join_prompt("Sum up.", "A text.")
    assert (draft.input, draft.output, draft.category) == ("A text.", "Short.", "summarization")
    with pytest.raises(RecordError, match="field 'response' is missing"):
        parse_dolly({"instruction": "Sum up.", "context": ""})


def test_sharegpt_maps_speakers_to_roles_and_keeps_the_id() -> None:
    draft = parse_sharegpt(
        sharegpt(
            ("system", "Be kind."),
            ("human", "Hi"),
            ("gpt", "Hello"),
            ("human", "Bye"),
            ("gpt", "Bye!"),
            id="conv-1",
            lang="en",
        )
    )
    assert [m["role"] for m in draft.messages] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
    ]
    assert draft.external_id == "conv-1"
    assert draft.meta == {"lang": "en"}
    # Several turns: no single-turn fields.
    assert draft.instruction is None and draft.output is None


def test_sharegpt_numeric_id_round_trips() -> None:
    # A non-string id has no column to go to, so it must survive in meta.
    record = sharegpt(("human", "Q"), ("gpt", "A"), id=42)
    draft = parse_sharegpt(record)
    assert draft.external_id is None
    assert to_sharegpt(view(draft, example_id=7)) == record


def test_sharegpt_single_turn_fills_instruction_and_output() -> None:
    draft = parse_sharegpt(sharegpt(("human", "Q"), ("gpt", "A")))
    assert (draft.instruction, draft.output) == ("Q", "A")


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (
            sharegpt(("human", "Hi"), ("gpt", "Hello"), ("human", "Still there?")),
            "does not end with an assistant response",
        ),
        (sharegpt(("gpt", "Hello")), "has no user turn"),
        (sharegpt(("robot", "Hi"), ("gpt", "Hello")), "unknown speaker 'robot'"),
        (
            {"conversations": [{"from": "human", "value": 3}, {"from": "gpt", "value": "x"}]},
            "turn 1: 'value' must be a string, got a number",
        ),
        ({"conversations": []}, "must be a non-empty list"),
        ({"conversations": ["hi"]}, "turn 1 must be an object"),
    ],
)
def test_sharegpt_errors(record: dict[str, Any], reason: str) -> None:
    with pytest.raises(RecordError, match=reason):
        parse_sharegpt(record)


def test_openai_messages_are_checked() -> None:
    messages = [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]
    draft = parse_openai({"messages": messages, "source": "s"})
    assert draft.messages == messages and draft.source == "s"
    with pytest.raises(RecordError, match="role must be system, user or assistant, got 'bot'"):
        parse_openai({"messages": [{"role": "bot", "content": "x"}]})
    with pytest.raises(RecordError, match="'content' must be a string, got null"):
        parse_openai({"messages": [{"role": "user", "content": None}]})
    with pytest.raises(RecordError, match="does not end with an assistant response"):
        parse_openai({"messages": [{"role": "user", "content": "Q"}]})


def test_sift_record_keeps_its_columns() -> None:
    record = to_sift(view(parse_alpaca({"instruction": "I", "input": "X", "output": "O", "k": 1})))
    draft = parse_sift(record)
    assert draft.source_format == "alpaca"
    assert (draft.instruction, draft.input, draft.output, draft.meta) == ("I", "X", "O", {"k": 1})
    assert draft.content_hash == record["content_hash"]
    with pytest.raises(RecordError, match="field 'meta' must be an object"):
        parse_sift({**record, "meta": [1]})


# ---------------------------------------------------------------- detection


@pytest.mark.parametrize(
    ("record", "fmt"),
    [
        ({"instruction": "i", "input": "", "output": "o"}, "alpaca"),
        ({"instruction": "i", "output": "o", "category": "c"}, "alpaca"),
        ({"instruction": "i", "input": "", "output": "o", "history": []}, "lima"),
        ({"instruction": "i", "context": "", "response": "o"}, "dolly"),
        ({"id": "x", "conversations": []}, "sharegpt"),
        ({"messages": []}, "openai"),
        ({"messages": [], "content_hash": "abc"}, "sift"),
    ],
)
def test_detect_format(record: dict[str, Any], fmt: str) -> None:
    assert detect_format(record) == fmt


def test_detect_format_refuses_what_it_cannot_tell() -> None:
    with pytest.raises(RecordError, match="cannot tell the format"):
        detect_format({"question": "q", "answer": "a"})
    with pytest.raises(RecordError, match="a record must be an object, got a list"):
        detect_format(["q", "a"])


# ---------------------------------------------------------------- content hash


def test_content_hash_ignores_line_endings_normal_forms_and_outer_space() -> None:
    plain = [{"role": "user", "content": "caf\u00e9\nline"}, {"role": "assistant", "content": "ok"}]
    variant = [
        {"role": "user", "content": "  cafe\u0301\r\nline \n"},
        {"role": "assistant", "content": "ok"},
    ]
    assert content_hash(plain) == content_hash(variant)
    assert len(content_hash(plain)) == 32


def test_content_hash_depends_on_roles_and_turn_boundaries() -> None:
    a = [{"role": "user", "content": "ab"}, {"role": "assistant", "content": "c"}]
    b = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "bc"}]
    c = [{"role": "system", "content": "ab"}, {"role": "assistant", "content": "c"}]
    assert len({content_hash(a), content_hash(b), content_hash(c)}) == 3


def test_content_hash_covers_the_conversation_not_the_category() -> None:
    one = parse_alpaca({"instruction": "i", "input": "", "output": "o", "category": "open_qa"})
    two = parse_alpaca(
        {"instruction": "i", "input": "", "output": "o", "category": "summarization"}
    )
    assert one.content_hash == two.content_hash


# ---------------------------------------------------------------- writers


def test_to_alpaca_gives_back_the_source_keys_in_source_order() -> None:
    record = {"output": "O", "category": "c", "instruction": "I", "input": "", "extra": [1, 2]}
    written = to_alpaca(view(parse_alpaca(record)))
    assert list(written.items()) == list(record.items())


def test_to_alpaca_of_a_lima_record_rebuilds_the_history() -> None:
    record = {"instruction": "I2", "input": "", "output": "O2", "history": [["I1", "O1"]]}
    written = to_alpaca(view(PARSERS["lima"](record)))
    assert list(written.items()) == list(record.items())


def test_to_alpaca_of_a_multi_turn_conversation_uses_history_pairs() -> None:
    draft = parse_sharegpt(sharegpt(("human", "Q1"), ("gpt", "A1"), ("human", "Q2"), ("gpt", "A2")))
    written = to_alpaca(view(draft))
    assert written == {"instruction": "Q2", "input": "", "output": "A2", "history": [["Q1", "A1"]]}


def test_to_sharegpt_round_trips_and_converts() -> None:
    record = sharegpt(("human", "Q"), ("gpt", "A"), id="c-9")
    assert to_sharegpt(view(parse_sharegpt(record))) == record
    from_alpaca = to_sharegpt(view(parse_alpaca({"instruction": "I", "input": "X", "output": "O"})))
    assert from_alpaca == {
        "id": "7",
        "conversations": [{"from": "human", "value": "I\n\nX"}, {"from": "gpt", "value": "O"}],
    }


def test_to_openai_and_to_dolly_convert_from_alpaca() -> None:
    draft = parse_alpaca({"instruction": "I", "input": "X", "output": "O", "category": "c"})
    assert to_openai(view(draft)) == {
        "messages": [{"role": "user", "content": "I\n\nX"}, {"role": "assistant", "content": "O"}],
        "category": "c",
    }
    assert to_dolly(view(draft)) == {
        "instruction": "I",
        "context": "X",
        "response": "O",
        "category": "c",
    }


def test_to_dolly_round_trips_a_dolly_record() -> None:
    record = {"instruction": "I", "context": "", "response": "R", "category": "open_qa"}
    assert list(to_dolly(view(parse_dolly(record))).items()) == list(record.items())
