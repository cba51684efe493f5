"""The Celery app that carries job messages: Redis in production, a file-system broker for the
embedded default. Its tasks are defined by the worker entry point (app.entrypoints.worker)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from celery import Celery

from app.platform.config import Settings, get_settings


def _transport_options(settings: Settings) -> dict[str, Any]:
    if settings.embedded:
        folder = settings.broker_dir
        folder.mkdir(parents=True, exist_ok=True)
        # The exchange tables too: by default kombu writes them under the working directory.
        control = folder / "control"
        control.mkdir(exist_ok=True)
        return {
            "data_folder_in": str(folder),
            "data_folder_out": str(folder),
            "control_folder": str(control),
        }
    # Longer than any task may run, so a slow task is never handed out twice.
    return {"visibility_timeout": settings.task_time_limit_s + 600}


def make_celery(settings: Settings | None = None) -> Celery:
    """A Celery app configured for reliable, idempotent jobs."""
    settings = settings or get_settings()
    app = Celery("sift", broker=settings.broker_url)
    app.conf.update(
        broker_transport_options=_transport_options(settings),
        broker_connection_retry_on_startup=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_time_limit=settings.task_time_limit_s,
        # The sweeper must not pile up behind long tasks: it expires if not run in time.
        task_soft_time_limit=settings.task_time_limit_s - 60,
        task_default_queue="cpu",
        worker_hijack_root_logger=False,
        beat_schedule={
            "sweep-stale-jobs": {
                "task": "sift.sweep_stale_jobs",
                "schedule": settings.job_sweep_interval_s,
                "options": {"expires": settings.job_sweep_interval_s},
            },
        },
    )
    return app


@lru_cache
def get_celery() -> Celery:
    """The process's Celery app for the current settings (cache_clear() after they change)."""
    return make_celery()
