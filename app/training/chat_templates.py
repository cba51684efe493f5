"""Named chat templates for base models without one (Alpaca, Vicuna v1.1), as Jinja that
`tokenizer.apply_chat_template` understands, so that evaluation formats prompts exactly as
training did."""

from __future__ import annotations

from typing import Any

from app.platform.errors import InvalidInput

ALPACA_SYSTEM = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request."
)
VICUNA_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)

# Each assistant turn ends with the EOS token, so that the model learns where to stop. The
# response header follows every user turn, so a generation prompt adds nothing more.
ALPACA = (
    "{{ bos_token }}"
    "{% if messages[0]['role'] == 'system' %}{{ messages[0]['content'] }}"
    "{% else %}" + ALPACA_SYSTEM + "{% endif %}"
    "{% for m in messages %}"
    "{% if m['role'] == 'user' %}\n\n### Instruction:\n{{ m['content'] }}\n\n### Response:\n"
    "{% elif m['role'] == 'assistant' %}{{ m['content'] }}{{ eos_token }}{% endif %}"
    "{% endfor %}"
)
VICUNA = (
    "{{ bos_token }}"
    "{% if messages[0]['role'] == 'system' %}{{ messages[0]['content'] }}"
    "{% else %}" + VICUNA_SYSTEM + "{% endif %}"
    "{% for m in messages %}"
    "{% if m['role'] == 'user' %} USER: {{ m['content'] }} ASSISTANT:"
    "{% elif m['role'] == 'assistant' %} {{ m['content'] }}{{ eos_token }}{% endif %}"
    "{% endfor %}"
)
NAMED = {"alpaca": ALPACA, "vicuna": VICUNA}


def apply_template(tokenizer: Any, name: str, base_model: str) -> str:
    """Give the tokenizer the chat template the run trains with; return its name ("own" for
    the model's own)."""
    if name in NAMED:
        tokenizer.chat_template = NAMED[name]
        return name
    if not getattr(tokenizer, "chat_template", None):
        raise missing_template(base_model)
    return "own"


def missing_template(base_model: str) -> InvalidInput:
    """The error for a base model without a chat template when the run names none."""
    return InvalidInput(
        f"template: the base model {base_model} has no chat template; "
        "choose a named one (alpaca or vicuna)",
        field="template",
    )
