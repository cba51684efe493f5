"""Experiments: every recipe trained and judged the same way, side by side."""

from app.platform.domain import Domain

DOMAIN = Domain("experiments", commands="app.experiments.commands:commands")
