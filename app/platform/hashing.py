"""Stable keys for things stored by what they are (requests, recipes, answers)."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> bytes:
    """`value` as JSON with sorted keys and no spaces: equal values, equal bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def json_sha256(value: Any) -> str:
    """The sha256 (hex) of `value`'s canonical JSON."""
    return hashlib.sha256(canonical_json(value)).hexdigest()
