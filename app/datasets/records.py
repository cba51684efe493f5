"""Record formats: parse a source record into an ExampleDraft, and write an example back out.

Each parser validates one record and raises RecordError with a reason that names the field.
Writers give back, for a record imported in a compatible format, exactly the source keys in
their source order, so that an export in the import format round-trips field by field.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

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
ROLE_TO_SHAREGPT = {"user": "human", "assistant": "gpt", "system": "system"}


# The columns that hold an example's content (models.ExampleContent), in the order the
# importer writes them.
CONTENT_FIELDS = (
    "messages",
    "instruction",
    "input",
    "output",
    "source",
    "category",
    "meta",
    "external_id",
    "content_hash",
    "source_format",
    "source_keys",
)


class RecordError(ValueError):
    """A record that cannot be imported; the message says which field and why."""


@dataclass(slots=True)
class ExampleDraft:
    """A validated record, ready to be written as an Example."""

    messages: list[dict[str, str]]
    source_format: str
    source_keys: list[str]
    instruction: str | None = None
    input: str | None = None
    output: str | None = None
    source: str | None = None
    category: str | None = None
    external_id: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    content_hash: str = ""

    def __post_init__(self) -> None:
        if not self.content_hash:
            self.content_hash = content_hash(self.messages)


def normalise(text: str) -> str:
    """The form of a text that content hashes are taken over."""
    return unicodedata.normalize("NFC", text.replace("\r\n", "\n")).strip()


def content_hash(messages: Iterable[Mapping[str, str]]) -> str:
    """A 128-bit hash of normalised conversation content, unique per dataset."""
    digest = hashlib.blake2b(digest_size=16)
    for message in messages:
        digest.update(message["role"].encode())
        digest.update(b"\x1f")
        digest.update(normalise(message["content"]).encode("utf-8", "surrogatepass"))
        digest.update(b"\x1e")
    return digest.hexdigest()


def join_prompt(instruction: str, input_text: str | None) -> str:
    """The user turn of an Alpaca-style record: the instruction, then its input if any."""
    return f"{instruction}\n\n{input_text}" if input_text else instruction


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


def _parse_messages(record: Mapping[str, Any]) -> list[dict[str, str]]:
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
    messages = _parse_messages(record)
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
    messages = _parse_messages(record)
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


PARSERS: dict[str, Callable[[Mapping[str, Any]], ExampleDraft]] = {
    "alpaca": parse_alpaca,
    "lima": lambda record: parse_alpaca(record, "lima"),
    "dolly": parse_dolly,
    "sharegpt": parse_sharegpt,
    "openai": parse_openai,
    "sift": parse_sift,
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


# ---------------------------------------------------------------- writers


@dataclass(slots=True)
class ExampleView:
    """What a writer needs of an example or a snapshot item."""

    id: int | None
    messages: list[dict[str, str]]
    instruction: str | None
    input: str | None
    output: str | None
    source: str | None
    category: str | None
    external_id: str | None
    meta: dict[str, Any]
    source_format: str | None
    source_keys: list[str] | None
    content_hash: str
    status: str | None = None
    origin: str | None = None


def _keep_source_shape(
    example: ExampleView, family: frozenset[str], full: dict[str, Any]
) -> dict[str, Any]:
    """Exactly the source keys in source order when the example came in this family's format."""
    if example.source_format in family and example.source_keys:
        return {key: full.get(key) for key in example.source_keys}
    return {k: v for k, v in full.items() if v is not None}


def _alpaca_parts(example: ExampleView) -> tuple[str, str, str, list[list[str]], str | None]:
    messages = example.messages
    system = messages[0]["content"] if messages and messages[0]["role"] == "system" else None
    turns = [m for m in messages if m["role"] != "system"]
    history = [[turns[i]["content"], turns[i + 1]["content"]] for i in range(0, len(turns) - 2, 2)]
    if example.instruction is not None and example.output is not None:
        return example.instruction, example.input or "", example.output, history, system
    return turns[-2]["content"], "", turns[-1]["content"], history, system


def to_alpaca(example: ExampleView) -> dict[str, Any]:
    """An Alpaca record; multi-turn examples carry LLaMA-Factory's `history` pairs."""
    instruction, input_text, output, history, system = _alpaca_parts(example)
    full: dict[str, Any] = {
        "instruction": instruction,
        "input": example.input if example.source_format in ("alpaca", "lima") else input_text,
        "output": output,
        "history": history or None,
        "system": system,
        "category": example.category,
        "source": example.source,
    }
    if example.source_format in ("alpaca", "lima"):
        full["history"] = history
        full.update(example.meta)
    return _keep_source_shape(example, frozenset({"alpaca", "lima"}), full)


def to_dolly(example: ExampleView) -> dict[str, Any]:
    """A Dolly record (`instruction`/`context`/`response`/`category`)."""
    instruction, input_text, output, _, _ = _alpaca_parts(example)
    full: dict[str, Any] = {
        "instruction": instruction,
        "context": input_text,
        "response": output,
        "category": example.category,
        "source": example.source,
    }
    if example.source_format == "dolly":
        full["context"] = example.input
        full.update(example.meta)
    return _keep_source_shape(example, frozenset({"dolly"}), full)


def to_sharegpt(example: ExampleView) -> dict[str, Any]:
    """A ShareGPT record (`conversations` of `from`/`value`)."""
    messages = example.messages
    system = messages[0]["content"] if messages and messages[0]["role"] == "system" else None
    full: dict[str, Any] = {
        "id": example.external_id or (str(example.id) if example.id is not None else None),
        "conversations": [
            {"from": ROLE_TO_SHAREGPT[m["role"]], "value": m["content"]}
            for m in messages
            if not (system is not None and m is messages[0])
        ],
        "system": system,
        "category": example.category,
        "source": example.source,
    }
    if example.source_format == "sharegpt":
        full.update(example.meta)
    return _keep_source_shape(example, frozenset({"sharegpt"}), full)


def to_openai(example: ExampleView) -> dict[str, Any]:
    """An OpenAI chat record (`messages`)."""
    full: dict[str, Any] = {
        "messages": [{"role": m["role"], "content": m["content"]} for m in example.messages],
        "category": example.category,
        "source": example.source,
    }
    if example.source_format == "openai":
        full.update(example.meta)
    return _keep_source_shape(example, frozenset({"openai"}), full)


def to_sift(example: ExampleView) -> dict[str, Any]:
    """Sift's own record: every column, for checking results outside Sift or re-import."""
    return {
        "id": example.id,
        "external_id": example.external_id,
        "source": example.source,
        "category": example.category,
        "status": example.status,
        "origin": example.origin,
        "instruction": example.instruction,
        "input": example.input,
        "output": example.output,
        "messages": example.messages,
        "meta": example.meta,
        "source_format": example.source_format,
        "content_hash": example.content_hash,
    }


WRITERS: dict[str, Callable[[ExampleView], dict[str, Any]]] = {
    "alpaca": to_alpaca,
    "lima": to_alpaca,
    "dolly": to_dolly,
    "sharegpt": to_sharegpt,
    "openai": to_openai,
    "jsonl": to_sift,
    "parquet": to_sift,
}
