"""A reward model behind an endpoint, asked the way NVIDIA NIM serves its reward models
(Nemotron-4-340B-Reward, Llama-3.1-Nemotron-70B-Reward and later; build.nvidia.com, NeMo
Curator's `query_reward_model`, CAMEL's `NemotronRewardModel` all call it so).

The request is an ordinary chat completion whose messages are the conversation to rate, ending
with the assistant's answer; the answer's message content is its scores as `name:value` pairs
joined by commas: `reward:-3.28125` for a single-reward model, or HelpSteer's five attributes
(`helpfulness:1.6,correctness:1.6,coherence:3.3,complexity:0.5,verbosity:0.5`). So it goes
through Sift's LLM client like any rating: cached, retried (Retry-After honoured), budgeted.

The value is the `reward` attribute, else `helpfulness`; every attribute is kept in details.
An answer that is not such a list of finite numbers, or that has neither attribute, is a
parse error with its text kept: it is never stored as a number.
"""

from __future__ import annotations

import math
import re
from typing import Any

from app.models.scoring import ScoreState
from app.platform.llm.chat import ChatResult

PARSE = "reward-endpoint"
PROTOCOL = "nvidia-nim-reward"  # chat completions, scores as 'name:value' pairs in the content
VALUE_ATTRIBUTES = ("reward", "helpfulness")  # the first one present is the score
MAX_TOKENS = 64  # the scores' text; NIM answers whatever is asked, a budget reserves this much

_PAIR = re.compile(r"^([A-Za-z_][\w-]*)\s*:\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)$")


def read_attributes(text: str) -> dict[str, float] | str:
    """The `name:value` pairs of a reward answer, or why it is not one."""
    parts = [part.strip() for part in text.strip().split(",")]
    if not text.strip():
        return "the endpoint answered nothing"
    attributes: dict[str, float] = {}
    for part in parts:
        match = _PAIR.match(part)
        if match is None:
            return f"{part[:80]!r} is not a 'name:number' score"
        value = float(match.group(2))
        if not math.isfinite(value):
            return f"{part[:80]!r} is not a finite number"
        attributes[match.group(1).lower()] = value
    return attributes


def read_reward(result: ChatResult) -> tuple[float | None, ScoreState, dict[str, Any]]:
    """(value, state, details) of one endpoint answer; the value only when it is readable."""
    found = read_attributes(result.text or "")
    if isinstance(found, str):
        return None, ScoreState.PARSE_ERROR, {"reason": found}
    name = next((n for n in VALUE_ATTRIBUTES if n in found), None)
    if name is None:
        reason = f"no {' or '.join(VALUE_ATTRIBUTES)} among {', '.join(found)}"
        return None, ScoreState.PARSE_ERROR, {"reason": reason, "attributes": found}
    return found[name], ScoreState.OK, {"attribute": name, "attributes": found}
