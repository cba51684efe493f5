"""Evaluations written straight into a test's session: items as a finished job leaves them."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session

from app.evaluation.chunks import refresh_totals, upsert_items
from app.evaluation.service import import_test_set_records, start_evaluation
from app.models import EvalRun
from app.platform.jobs.dispatch import run_jobs_here
from tests.endpoints import configure_endpoint


def configure_endpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    """Endpoints alpha, beta and judge in the settings (nothing is sent to them here)."""
    for name in ("alpha", "beta", "judge"):
        configure_endpoint(
            monkeypatch, name, base_url="http://127.0.0.1:9/v1", model=f"{name}-model"
        )


def judged_run(session: Session, name: str, items: list[dict[str, Any]]) -> EvalRun:
    """An evaluation of alpha against beta on test set `name`, with these items judged
    (each: prompt, verdict_ab, verdict_ba, verdict, state, and optionally more columns)."""
    records = [{"question_id": f"p{i}", "turns": [item["prompt"]]} for i, item in enumerate(items)]
    import_test_set_records(session, name, records)
    run_jobs_here(session)
    run = start_evaluation(session, "alpha", "beta", name, "judge")
    rows = []
    for i, item in enumerate(items):
        row = {
            "run_id": run.id,
            "prompt_id": f"p{i}",
            "position": i,
            "prompt": item["prompt"],
            "turns": [item["prompt"]],
            "category": None,
            "answers_a": ["an answer from A"],
            "answers_b": ["an answer from B"],
            "judge_ab": "8 3\nA is better.",
            "judge_ba": "3 8\nA is better.",
            "error": None,
            "raw": {"scores": {"ab": [8, 3], "ba": [3, 8]}},
        }
        row.update(item)
        rows.append(row)
    upsert_items(session, rows)
    refresh_totals(session, run.id)
    session.flush()
    session.refresh(run)
    return run
