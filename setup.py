"""Sift's one build step beyond pyproject.toml: a wheel carries the templates, static files
(with the pinned htmx and Swagger UI that `npm ci` put in static/vendor), migrations and
alembic.ini inside the package, as `app/_bundled/`, so that an installed `sift` works from any
folder (see app/platform/resources.py). An editable install reads them from the checkout."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
BUNDLED = ("templates", "static", "migrations", "alembic.ini")
VENDOR = ("htmx.min.js", "swagger-ui-bundle.js", "swagger-ui.css")


class BuildWithAssets(build_py):
    """build_py, then the files beside the code copied into the package."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        missing = [name for name in VENDOR if not (HERE / "static" / "vendor" / name).is_file()]
        if missing:
            raise SystemExit(
                f"static/vendor lacks {', '.join(missing)}: run `make install` (npm ci) first"
            )
        target = Path(self.build_lib) / "app" / "_bundled"
        skip = shutil.ignore_patterns("__pycache__", "*.pyc", ".installed")
        for name in BUNDLED:
            source, copy = HERE / name, target / name
            if source.is_dir():
                shutil.copytree(source, copy, dirs_exist_ok=True, ignore=skip)
            else:
                copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, copy)


setup(cmdclass={"build_py": BuildWithAssets})
