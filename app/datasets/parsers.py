"""Record formats read: each parser validates one source record (Alpaca, LIMA, Dolly,
ShareGPT, OpenAI chat, Sift's own export) and makes an ExampleDraft of it, or raises
RecordError with a reason that names the field."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from app.datasets.records import ExampleDraft, RecordError, join_prompt

ROLES = ("system", "user", "assistant")
SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "bing": "assistant",
    "bard": "assistant",
    "system": "system",
}


# ---------------------------------------------------------------- validation helpers


def _text(record: Mapping[str, Any], key: str, *, required: bool, allow_empty: bool = True) -> Any:
    if key not in record or record[key] is None:
        if required:
            raise RecordError(f"field '{key}' is missing")
        return None
    value = record[key]
    if not isinstance(value, str):
        raise RecordError(f"field '{key}' must be a string, got {_type_name(value)}")
    if "\x00" in value:
        raise RecordError(f"field '{key}' contains a NUL character")
    if not allow_empty and not value.strip():
        raise RecordError(f"field '{key}' is empty")
    return value


def _type_name(value: Any) -> str:
    return {
        type(None): "null",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        list: "a list",
        dict: "an object",
        str: "a string",
    }.get(type(value), type(value).__name__)


def _external_id(record: Mapping[str, Any], key: str = "id") -> str | None:
    value = record.get(key)
    return value if isinstance(value, str) else None


def _extras(record: Mapping[str, Any], known: frozenset[str]) -> dict[str, Any]:
    extras = {k: v for k, v in record.items() if k not in known}
    # PostgreSQL's JSON cannot hold U+0000; refuse it here rather than fail the whole file.
    if extras and "\\u0000" in orjson.dumps(extras).decode():
        raise RecordError("a field contains a NUL character")
    return extras


def _history(record: Mapping[str, Any]) -> list[dict[str, str]]:
    history = record.get("history")
    if history is None:
        return []
    if not isinstance(history, list):
        raise RecordError(
            f"field 'history' must be a list of [prompt, answer] pairs, got {_type_name(history)}"
        )
    messages: list[dict[str, str]] = []
    for turn, pair in enumerate(history, 1):
        if not (
            isinstance(pair, list) and len(pair) == 2 and all(isinstance(t, str) for t in pair)
        ):
            raise RecordError(
                f"field 'history' turn {turn} must be a [prompt, answer] pair of strings"
            )
        messages.append({"role": "user", "content": pair[0]})
        messages.append({"role": "assistant", "content": pair[1]})
    return messages


# ---------------------------------------------------------------- parsers

ALPACA_KEYS = frozenset(
    {"instruction", "input", "output", "history", "system", "source", "category"}
)


def parse_alpaca(record: Mapping[str, Any], fmt: str = "alpaca") -> ExampleDraft:
    """Alpaca (`instruction`/`input`/`output`), also LIMA-style with `history` pairs."""
    instruction = _text(record, "instruction", required=True, allow_empty=False)
    input_text = _text(record, "input", required=False)
    # An empty answer is kept (real Alpaca data has some; scorers judge it); a missing one is not.
    output = _text(record, "output", required=True)
    system = _text(record, "system", required=False)
    messages = [{"role": "system", "content": system}] if system else []
    messages += _history(record)
    messages.append({"role": "user", "content": join_prompt(instruction, input_text)})
    messages.append({"role": "assistant", "content": output})
    return ExampleDraft(
        messages=messages,
        source_format=fmt,
        source_keys=list(record),
        instruction=instruction,
        input=input_text,
        output=output,
        source=_text(record, "source", required=False),
        category=_text(record, "category", required=False),
        meta=_extras(record, ALPACA_KEYS),
    )


DOLLY_KEYS = frozenset({"instruction", "context", "response", "category", "source"})


def parse_dolly(record: Mapping[str, Any]) -> ExampleDraft:
    """Dolly (`instruction`/`context`/`response`/`category`)."""
    instruction = _text(record, "instruction", required=True, allow_empty=False)
    context = _text(record, "context", required=False)
    response = _text(record, "response", required=True)
    return ExampleDraft(
        messages=[
            {"role": "user", "content": join_prompt(instruction, context)},
            {"role": "assistant", "content": response},
        ],
        source_format="dolly",
        source_keys=list(record),
        instruction=instruction,
        input=context,
        output=response,
        source=_text(record, "source", required=False),
        category=_text(record, "category", required=False),
        meta=_extras(record, DOLLY_KEYS),
    )


def _check_conversation(messages: list[dict[str, str]], field_name: str) -> None:
    turns = [m for m in messages if m["role"] != "system"]
    if not any(m["role"] == "user" for m in turns):
        raise RecordError(f"field '{field_name}' has no user turn")
    if not turns or turns[-1]["role"] != "assistant":
        raise RecordError(f"field '{field_name}' does not end with an assistant response")


def _single_turn_fields(messages: list[dict[str, str]]) -> tuple[str | None, str | None]:
    turns = [m for m in messages if m["role"] != "system"]
    if len(turns) == 2:
        return turns[0]["content"], turns[1]["content"]
    return None, None


SHAREGPT_KEYS = frozenset({"id", "conversations", "system", "source", "category"})


def parse_sharegpt(record: Mapping[str, Any]) -> ExampleDraft:
    """ShareGPT (`conversations` of `from`/`value`), multi-turn."""
    conversation = record.get("conversations")
    if not isinstance(conversation, list) or not conversation:
        raise RecordError("field 'conversations' must be a non-empty list")
    system = _text(record, "system", required=False)
    messages = [{"role": "system", "content": system}] if system else []
    for turn, item in enumerate(conversation, 1):
        if not isinstance(item, dict):
            raise RecordError(f"conversations turn {turn} must be an object")
        speaker, value = item.get("from"), item.get("value")
        if speaker not in SHAREGPT_ROLES:
            raise RecordError(f"conversations turn {turn}: unknown speaker {speaker!r}")
        if not isinstance(value, str):
            raise RecordError(
                f"conversations turn {turn}: 'value' must be a string, got {_type_name(value)}"
            )
        messages.append({"role": SHAREGPT_ROLES[speaker], "content": value})
    _check_conversation(messages, "conversations")
    instruction, output = _single_turn_fields(messages)
    return ExampleDraft(
        messages=messages,
        source_format="sharegpt",
        source_keys=list(record),
        instruction=instruction,
        output=output,
        source=_text(record, "source", required=False),
        category=_text(record, "category", required=False),
        external_id=_external_id(record),
        # A string id becomes external_id; any other id is kept as it came, in meta.
        meta=_extras(record, SHAREGPT_KEYS if _external_id(record) else SHAREGPT_KEYS - {"id"}),
    )


OPENAI_KEYS = frozenset({"messages", "source", "category"})
SIFT_KEYS = frozenset(
    {
        "id",
        "messages",
        "source",
        "category",
        "external_id",
        "meta",
        "content_hash",
        "instruction",
        "input",
        "output",
        "status",
        "origin",
        "dataset",
        "scores",
        "embedding",
    }
)


def parse_messages(record: Mapping[str, Any]) -> list[dict[str, str]]:
    """The `messages` field of a record, checked: a conversation of known roles that ends
    with an assistant response."""
    raw = record.get("messages")
    if not isinstance(raw, list) or not raw:
        raise RecordError("field 'messages' must be a non-empty list")
    messages = []
    for turn, item in enumerate(raw, 1):
        if not isinstance(item, dict):
            raise RecordError(f"messages turn {turn} must be an object")
        role, content = item.get("role"), item.get("content")
        if role not in ROLES:
            raise RecordError(
                f"messages turn {turn}: role must be system, user or assistant, got {role!r}"
            )
        if not isinstance(content, str):
            raise RecordError(
                f"messages turn {turn}: 'content' must be a string, got {_type_name(content)}"
            )
        messages.append({"role": role, "content": content})
    _check_conversation(messages, "messages")
    return messages


def parse_openai(record: Mapping[str, Any]) -> ExampleDraft:
    """OpenAI chat (`messages` of `role`/`content`)."""
    messages = parse_messages(record)
    instruction, output = _single_turn_fields(messages)
    return ExampleDraft(
        messages=messages,
        source_format="openai",
        source_keys=list(record),
        instruction=instruction,
        output=output,
        source=_text(record, "source", required=False),
        category=_text(record, "category", required=False),
        meta=_extras(record, OPENAI_KEYS),
    )


def parse_sift(record: Mapping[str, Any]) -> ExampleDraft:
    """Sift's own export (jsonl or parquet): messages plus the example's columns."""
    messages = parse_messages(record)
    meta = record.get("meta") or {}
    if not isinstance(meta, dict):
        raise RecordError(f"field 'meta' must be an object, got {_type_name(meta)}")
    external = record.get("external_id")
    return ExampleDraft(
        messages=messages,
        source_format=_text(record, "source_format", required=False) or "openai",
        source_keys=[],
        instruction=_text(record, "instruction", required=False),
        input=_text(record, "input", required=False),
        output=_text(record, "output", required=False),
        source=_text(record, "source", required=False),
        category=_text(record, "category", required=False),
        external_id=str(external) if external is not None else None,
        meta=meta,
    )


SELF_INSTRUCT_KEYS = frozenset({"id", "instruction", "instances", "source", "category"})


def parse_self_instruct(record: Mapping[str, Any]) -> ExampleDraft:
    """A Self-Instruct seed task (`instruction` plus `instances` of `input`/`output`), read as
    Alpaca's generate_instruction.py reads it: the instruction with its first instance. Any
    further instances are kept in meta (the 175 seed tasks each have exactly one)."""
    instances = record.get("instances")
    if not isinstance(instances, list) or not instances:
        raise RecordError("field 'instances' must be a non-empty list of input/output objects")
    first = instances[0]
    if not isinstance(first, dict):
        raise RecordError(f"instances item 1 must be an object, got {_type_name(first)}")
    for key in ("input", "output"):
        if key in first and not isinstance(first[key], str):
            raise RecordError(f"field 'instances[0].{key}' must be a string")
    if "output" not in first:
        raise RecordError("field 'instances[0].output' is missing")
    draft = parse_alpaca(
        {
            "instruction": record.get("instruction"),
            "input": first.get("input"),
            "output": first["output"],
        }
        | {k: record[k] for k in ("source", "category") if k in record},
        "self-instruct",
    )
    draft.source_keys = list(record)
    draft.external_id = _external_id(record)
    meta = _extras(record, SELF_INSTRUCT_KEYS if draft.external_id else SELF_INSTRUCT_KEYS - {"id"})
    if len(instances) > 1:
        meta["more_instances"] = instances[1:]
    draft.meta = meta
    return draft


PARSERS: dict[str, Callable[[Mapping[str, Any]], ExampleDraft]] = {
    "alpaca": parse_alpaca,
    "lima": lambda record: parse_alpaca(record, "lima"),
    "dolly": parse_dolly,
    "sharegpt": parse_sharegpt,
    "openai": parse_openai,
    "sift": parse_sift,
    "self-instruct": parse_self_instruct,
}


def detect_format(record: Any) -> str:
    """The record format that a record's keys announce."""
    if not isinstance(record, dict):
        raise RecordError(f"a record must be an object, got {_type_name(record)}")
    keys = record.keys()
    if "messages" in keys and "content_hash" in keys:
        return "sift"
    if "conversations" in keys:
        return "sharegpt"
    if "instances" in keys and "instruction" in keys:
        return "self-instruct"
    if "messages" in keys:
        return "openai"
    if "context" in keys or "response" in keys:
        return "dolly"
    if "history" in keys:
        return "lima"
    if "instruction" in keys or "output" in keys:
        return "alpaca"
    raise RecordError(
        "cannot tell the format from the keys "
        f"{sorted(keys)[:8]}: expected instruction/output, conversations or messages"
    )
