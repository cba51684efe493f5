"""Where a dataset's pages are, for links from any page."""

from __future__ import annotations

from urllib.parse import quote


def dataset_url(name: str) -> str:
    """The page of a dataset (names may hold any printable character)."""
    return "/datasets/" + quote(name, safe="/")
