"""Picking a small, good and diverse set: embeddings, near-duplicates, selectors."""
