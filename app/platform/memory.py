"""Memory that lives as long as the process, kept out of the garbage collector's way."""

from __future__ import annotations

import gc


def settle() -> None:
    """Collect the garbage, then move everything still alive out of the collector's reach: for
    what lives as long as the process (the app once started, a model once loaded). A full
    collection walks every object it tracks; with the app and a model's objects among them, it
    added 100 to 250 ms to every fifth or eighth load of a 3,000-point page. Objects frozen
    here are still freed when nothing refers to them."""
    gc.collect()
    gc.freeze()
