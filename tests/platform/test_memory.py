"""What lives as long as the process is kept out of the garbage collector's way: the app once
started (tests/web/test_unavailable.py), a model once loaded, and never garbage."""

from __future__ import annotations

import gc
import weakref

from app.platform.memory import settle
from app.platform.vectors import models


class Node:
    """Something that can sit in a reference cycle."""

    me: Node


def test_settle_collects_the_garbage_and_freezes_the_rest() -> None:
    cycle = Node()
    cycle.me = cycle
    gone = weakref.ref(cycle)
    del cycle
    kept = [[i] for i in range(5_000)]
    before = gc.get_freeze_count()
    settle()
    assert gone() is None  # collected, not frozen for ever
    assert gc.get_freeze_count() >= before + len(kept)


def test_a_loaded_embedding_model_is_frozen_with_the_rest() -> None:
    models._load.cache_clear()
    gc.unfreeze()
    models.load_embedder(None)  # the bundled MiniLM
    assert gc.get_freeze_count() > 50_000  # the model, and the libraries it brought
