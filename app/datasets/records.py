"""An example as Sift stores it, before and independent of any file format: the draft that a
parser makes of a source record, its content hash, and the columns that hold its content.
`parsers` reads the formats into drafts; `writers` writes examples back out."""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

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
