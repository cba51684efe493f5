"""Metric curves drawn on the server as SVG polylines (no script needed to see them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

WIDTH, HEIGHT, PAD = 480, 140, 4


@dataclass(frozen=True)
class Curve:
    points: str  # "x,y x,y ..." in the SVG's coordinates
    low: float
    high: float
    first_step: int
    last_step: int
    width: int = WIDTH
    height: int = HEIGHT


def curve(series: Sequence[tuple[int, float | None]]) -> Curve | None:
    """The polyline of (step, value) pairs scaled into the chart; None with nothing to draw."""
    values = [(step, value) for step, value in series if value is not None]
    if not values:
        return None
    steps = [s for s, _ in values]
    ys = [v for _, v in values]
    low, high = min(ys), max(ys)
    span_x = (steps[-1] - steps[0]) or 1
    span_y = (high - low) or 1.0
    inner_w, inner_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD
    points = " ".join(
        f"{PAD + (s - steps[0]) / span_x * inner_w:.1f},{PAD + (high - v) / span_y * inner_h:.1f}"
        for s, v in values
    )
    return Curve(points, low, high, steps[0], steps[-1])
