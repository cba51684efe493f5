"""Test sets: reading the public evaluation sets (and any file with a prompt field) into prompts.

The formats are the files as published: AlpaGasus' Vicuna, WizardLM and Self-Instruct test
sets, and FastChat's MT-Bench and Vicuna-bench questions (`turns`). A Self-Instruct prompt
with an input is asked as AlpaGasus asked it: "{instruction} Input: {input}".
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.datasets.service import FileError, RecordStream, detect_container
from app.platform.errors import InvalidInput
from app.platform.validation import first_nul, nul_message

FORMATS = ("auto", "vicuna", "wizardlm", "self-instruct", "mt-bench", "ifeval", "prompts")
# A generic record's prompt: the first of these fields that it has.
PROMPT_FIELDS = ("prompt", "question", "instruction", "Instruction", "text", "query", "input")
ID_FIELDS = ("id", "question_id", "idx", "prompt_id")
MAX_ERRORS_SHOWN = 10
MAX_RECORD_CHARS = 1_000_000


@dataclass
class PromptDraft:
    """One prompt as read from a record."""

    prompt_id: str
    turns: list[str]
    category: str | None = None
    reference: list[str] | None = None
    meta: dict[str, Any] = field(default_factory=dict)


class RecordProblem(ValueError):
    """A record that is not a prompt of its format; the message names the field."""


def detect_format(record: Any) -> str:
    """The test-set format of a record, from its keys."""
    if not isinstance(record, dict):
        return "prompts"
    if isinstance(record.get("turns"), list):
        return "mt-bench"
    if "instruction_id_list" in record and "kwargs" in record:
        return "ifeval"
    if "Instruction" in record and ("Skill" in record or "idx" in record):
        return "wizardlm"
    if "instruction" in record and isinstance(record.get("instances"), list):
        return "self-instruct"
    if "text" in record and "question_id" in record:
        return "vicuna"
    return "prompts"


def _text(record: dict[str, Any], name: str) -> str:
    value = record.get(name)
    if not isinstance(value, str) or not value.strip():
        raise RecordProblem(f"field {name!r} must be a non-empty string")
    return value


def _id(record: dict[str, Any], names: Iterable[str], number: int) -> str:
    for name in names:
        value = record.get(name)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
            return str(value).strip()[:100]
    return str(number)


def _category(value: Any) -> str | None:
    return str(value)[:200] if value not in (None, "") else None


def parse_vicuna(record: dict[str, Any], number: int) -> PromptDraft:
    """AlpaGasus' Vicuna set: question_id, text, category."""
    return PromptDraft(
        _id(record, ["question_id"], number),
        [_text(record, "text")],
        _category(record.get("category")),
    )


def parse_wizardlm(record: dict[str, Any], number: int) -> PromptDraft:
    """AlpaGasus' WizardLM set: idx, Skill, Difficulty, Instruction."""
    meta = {"difficulty": record["Difficulty"]} if "Difficulty" in record else {}
    return PromptDraft(
        _id(record, ["idx"], number),
        [_text(record, "Instruction")],
        _category(record.get("Skill")),
        meta=meta,
    )


def parse_self_instruct(record: dict[str, Any], number: int) -> PromptDraft:
    """Self-Instruct's user-oriented set: instruction and one instance (input, output)."""
    instruction = _text(record, "instruction")
    instances = record.get("instances")
    if not isinstance(instances, list) or not instances or not isinstance(instances[0], dict):
        raise RecordProblem("field 'instances' must be a list of {input, output} objects")
    first = instances[0]
    given = first.get("input") or ""
    if not isinstance(given, str):
        raise RecordProblem("field 'instances[0].input' must be a string")
    output = first.get("output")
    return PromptDraft(
        _id(record, ["id"], number),
        [f"{instruction} Input: {given}" if given else instruction],
        _category(record.get("motivation_app")),
        [output] if isinstance(output, str) and output else None,
    )


def parse_mt_bench(record: dict[str, Any], number: int) -> PromptDraft:
    """FastChat's questions (MT-Bench, Vicuna-bench): question_id, category, turns, reference."""
    turns = record.get("turns")
    if not isinstance(turns, list) or not turns:
        raise RecordProblem("field 'turns' must be a non-empty list of strings")
    for i, turn in enumerate(turns):
        if not isinstance(turn, str) or not turn.strip():
            raise RecordProblem(f"field 'turns[{i}]' must be a non-empty string")
    reference = record.get("reference")
    if reference is not None and not (
        isinstance(reference, list) and all(isinstance(r, str) for r in reference)
    ):
        raise RecordProblem("field 'reference' must be a list of strings")
    return PromptDraft(
        _id(record, ["question_id"], number),
        list(turns),
        _category(record.get("category")),
        reference or None,
    )


def parse_prompt_record(
    record: dict[str, Any], number: int, prompt_field: str | None = None
) -> PromptDraft:
    """Any record with a prompt field (`prompt_field`, else the first of PROMPT_FIELDS); an
    Alpaca-style `input` next to an `instruction` is appended to it."""
    name = prompt_field or next((f for f in PROMPT_FIELDS if f in record), None)
    if name is None:
        raise RecordProblem(f"no prompt field: expected one of {', '.join(PROMPT_FIELDS)}")
    text = _text(record, name)
    given = record.get("input")
    if name.lower() == "instruction" and isinstance(given, str) and given.strip():
        text = f"{text}\n\n{given}"
    output = record.get("output")
    return PromptDraft(
        _id(record, ID_FIELDS, number),
        [text],
        _category(record.get("category")),
        [output] if isinstance(output, str) and output else None,
    )


def parse_ifeval(record: dict[str, Any], number: int) -> PromptDraft:
    """IFEval's layout: key, prompt (asked verbatim), instruction_id_list and kwargs (one
    object of arguments per instruction), kept in `meta` for the rules."""
    ids, kwargs = record.get("instruction_id_list"), record.get("kwargs")
    if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
        raise RecordProblem("field 'instruction_id_list' must be a list of instruction ids")
    if not isinstance(kwargs, list) or len(kwargs) != len(ids):
        raise RecordProblem("field 'kwargs' must be a list with one object per instruction")
    if not all(isinstance(k, dict) for k in kwargs):
        raise RecordProblem("field 'kwargs' must hold objects")
    return PromptDraft(
        _id(record, ["key"], number),
        [_text(record, "prompt")],
        meta={"instruction_id_list": ids, "kwargs": kwargs},
    )


PARSERS = {
    "vicuna": parse_vicuna,
    "wizardlm": parse_wizardlm,
    "self-instruct": parse_self_instruct,
    "mt-bench": parse_mt_bench,
    "ifeval": parse_ifeval,
}


def parse_records(
    records: Iterable[tuple[int, Any]], fmt: str = "auto", prompt_field: str | None = None
) -> tuple[str, list[PromptDraft]]:
    """The format and prompts of numbered records; InvalidInput naming every bad record (by
    number) when any is bad, so that nothing is half imported."""
    if fmt not in FORMATS:
        raise InvalidInput(f"format: {fmt!r} is not one of {', '.join(FORMATS)}", field="format")
    drafts: list[PromptDraft] = []
    errors: list[str] = []
    seen: dict[str, int] = {}
    for number, record in records:
        if fmt == "auto":
            fmt = "prompts" if prompt_field else detect_format(record)
        try:
            if not isinstance(record, dict):
                raise RecordProblem("a record must be a JSON object")
            nul = first_nul(record)
            if nul is not None:  # PostgreSQL text and jsonb cannot hold it
                raise RecordProblem(nul_message(nul))
            draft = (
                PARSERS[fmt](record, number)
                if fmt in PARSERS
                else parse_prompt_record(record, number, prompt_field)
            )
            if draft.prompt_id in seen:
                raise RecordProblem(
                    f"id {draft.prompt_id!r} is already used by record {seen[draft.prompt_id]}"
                )
        except RecordProblem as exc:
            errors.append(f"record {number}: {exc}")
            continue
        seen[draft.prompt_id] = number
        drafts.append(draft)
    if errors:
        shown = "; ".join(errors[:MAX_ERRORS_SHOWN])
        more = (
            f" (and {len(errors) - MAX_ERRORS_SHOWN} more)"
            if len(errors) > MAX_ERRORS_SHOWN
            else ""
        )
        raise InvalidInput(
            f"{len(errors)} bad record(s), nothing imported: {shown}{more}", errors=errors
        )
    if not drafts:
        raise InvalidInput("there are no prompts to import")
    return ("prompts" if fmt == "auto" else fmt), drafts


def read_file(path: Path) -> Iterator[tuple[int, Any]]:
    """The numbered records of a JSON list, JSONL or CSV file, streamed."""
    try:
        stream = RecordStream(path, detect_container(path), MAX_RECORD_CHARS)
        for record in stream:
            if record.error is not None:
                raise InvalidInput(f"{path.name}: record {record.number}: {record.error}")
            yield record.number, record.value
    except FileError as exc:
        raise InvalidInput(str(exc)) from exc


def prompts_digest(drafts: Iterable[PromptDraft]) -> str:
    """sha256 of the prompts in order: ids, turns, categories and references (and IFEval's
    instructions, which decide its verdicts)."""
    digest = hashlib.sha256()
    for d in drafts:
        row: list[Any] = [d.prompt_id, d.turns, d.category, d.reference]
        if "instruction_id_list" in d.meta:
            row.append(d.meta)
        digest.update(json.dumps(row, ensure_ascii=False, sort_keys=True).encode())
        digest.update(b"\n")
    return digest.hexdigest()
