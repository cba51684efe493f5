"""The one list of Sift's domains: the web app, the command line and the worker take their
routers, pages, commands and job kinds from here."""

from __future__ import annotations

from app import (
    collections,
    datasets,
    evaluation,
    generation,
    jobs,
    review,
    scoring,
    selection,
    training,
    users,
)
from app.platform.domain import Domain

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
    jobs.DOMAIN,
)
TASK_MODULES = tuple(domain.tasks for domain in DOMAINS if domain.tasks)
