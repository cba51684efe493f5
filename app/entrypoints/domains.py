"""The one list of Sift's domains: the web app, the command line and the worker take their
routers, pages, commands and job kinds from here."""

from __future__ import annotations

from app import (
    collections,
    datasets,
    evaluation,
    experiments,
    generation,
    jobs,
    review,
    scoring,
    selection,
    training,
    users,
)
from app.platform.domain import Domain
from app.platform.jobs.registry import declare_task_modules, load_job_kinds

DOMAINS: tuple[Domain, ...] = (
    users.DOMAIN,
    datasets.DOMAIN,
    scoring.DOMAIN,
    selection.DOMAIN,
    review.DOMAIN,
    collections.DOMAIN,
    generation.DOMAIN,
    training.DOMAIN,
    evaluation.DOMAIN,
    experiments.DOMAIN,
    jobs.DOMAIN,
)
TASK_MODULES = tuple(domain.tasks for domain in DOMAINS if domain.tasks)


def load_every_job_kind() -> None:
    """Register every domain's job kinds in this process (a worker, a test)."""
    declare_task_modules(TASK_MODULES)
    load_job_kinds()
