"""Where Sift's files beside its code are: templates, static files (with the pinned htmx and
Swagger UI), migrations and alembic.ini. An installed wheel carries them inside the package
(`app/_bundled`, copied there by setup.py's build step); a checkout, editable install
or image built from the source tree reads them from the repository root."""

from __future__ import annotations

from pathlib import Path

BUNDLED = Path(__file__).resolve().parents[1] / "_bundled"
CHECKOUT = Path(__file__).resolve().parents[2]
BUNDLED_NAMES = ("templates", "static", "migrations", "alembic.ini")


def resource(name: str) -> Path:
    """The path of one of BUNDLED_NAMES: in the package when it was installed from a wheel,
    else in the source tree."""
    packaged = BUNDLED / name
    return packaged if packaged.exists() else CHECKOUT / name
