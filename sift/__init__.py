"""Sift's Python client: `from sift.client import Sift` (the server itself is the `app` package)."""
