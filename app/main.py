"""The FastAPI application: JSON API under /api/v1, the studio's pages under /."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm.exc import StaleDataError
from starlette.middleware.sessions import SessionMiddleware

from app.collections.routes import router as collections_api
from app.core.config import get_settings
from app.core.errors import SiftError
from app.core.logging import configure_logging
from app.datasets.routes import router as datasets_api
from app.evaluation.routes import router as evaluation_api
from app.generation.routes import router as generation_api
from app.jobs.routes import router as jobs_api
from app.review.routes import router as review_api
from app.scoring.routes import router as scoring_api
from app.selection.routes import router as selection_api
from app.training.routes import router as training_api

ROOT = Path(__file__).resolve().parent.parent
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
}


def _error_response(request: Request, status: int, message: str, detail: dict) -> Response:
    if not request.url.path.startswith("/api/"):
        from app.core.web import error_page

        return error_page(request, status, message)
    return JSONResponse({"error": message, **detail}, status_code=status)


def create_app() -> FastAPI:
    """Build the application; settings are read (and checked) here."""
    settings = get_settings()
    configure_logging()
    app = FastAPI(title="Sift", version="0.1.0", docs_url=None, redoc_url=None)

    @app.exception_handler(SiftError)
    async def sift_error(request: Request, exc: SiftError) -> Response:
        return _error_response(request, exc.status_code, exc.message, exc.detail)

    @app.exception_handler(StaleDataError)
    async def stale(request: Request, exc: StaleDataError) -> Response:
        return _error_response(request, 409, "the example was changed by someone else", {})

    @app.exception_handler(OperationalError)
    async def busy(request: Request, exc: OperationalError) -> Response:
        # SQLite in the embedded default: a writer lost the lock to a job; asking again works.
        if "database is locked" not in str(exc.orig):
            raise exc
        response = _error_response(request, 503, "the database is busy: try again", {})
        response.headers["retry-after"] = "1"
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        problems = [
            {"field": ".".join(str(p) for p in e["loc"][1:]), "message": e["msg"]}
            for e in exc.errors()
        ]
        message = "; ".join(f"{p['field']}: {p['message']}" for p in problems) or "invalid request"
        return _error_response(request, 422, message, {"problems": problems})

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        started = time.perf_counter()
        response = await call_next(request)
        # How long the server took, for browsers' dev tools and bench/ui.py.
        elapsed_ms = (time.perf_counter() - started) * 1000
        response.headers["server-timing"] = f"app;dur={elapsed_ms:.2f}"
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret_key,
        session_cookie="sift_session",
        same_site="lax",
        https_only=settings.session_https_only,
        max_age=14 * 24 * 3600,
    )
    app.include_router(datasets_api)
    app.include_router(jobs_api)
    app.include_router(scoring_api)
    app.include_router(collections_api)
    app.include_router(selection_api)
    app.include_router(evaluation_api)
    app.include_router(review_api)
    app.include_router(generation_api)
    app.include_router(training_api)
    from app.core.web import include_pages, templates

    include_pages(app)
    app.mount("/static", StaticFiles(directory=ROOT / "static"), name="static")

    @app.get("/api/docs", include_in_schema=False)
    def api_docs(request: Request) -> Response:
        # Swagger UI from static/vendor: FastAPI's own page loads it from a CDN with inline code.
        return templates.TemplateResponse(request, "api_docs.html")

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
