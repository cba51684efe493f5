"""Putting a number on every example: LLM raters, Deita scorers, LIMA heuristics."""
