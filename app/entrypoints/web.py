"""The web app: every domain's JSON API under /api/v1 and pages under /, with the error
handlers, security headers and the request gate that all of them share."""

from __future__ import annotations

import errno
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
import psycopg
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import exc as sa
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError
from starlette.middleware.sessions import SessionMiddleware
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from app.entrypoints.domains import DOMAINS
from app.platform.body_limit import BodyLimit
from app.platform.config import get_settings
from app.platform.db import DB, is_transient
from app.platform.domain import load
from app.platform.errors import SiftError, Unavailable
from app.platform.logging import configure_logging
from app.platform.memory import settle
from app.platform.resources import resource
from app.platform.security import user_for_token
from app.platform.validation import refuse_nul_input
from app.platform.web import check_csrf, error_page, optional_page_user, templates

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
log = logging.getLogger(__name__)


def _error_response(request: Request, status: int, message: str, detail: dict) -> Response:
    if not request.url.path.startswith("/api/"):
        return error_page(request, status, message)
    return JSONResponse({"error": message, **detail}, status_code=status)


def database_trouble(exc: Exception) -> Unavailable | None:
    """The 503 for a database error that asking again later cures (a lock timeout, a deadlock,
    no free connection, the server down or restarting); None for anything else (a bug)."""
    if is_transient(exc) or isinstance(exc, sa.TimeoutError):
        return Unavailable("the database is busy: try again in a moment", retry_after=1)
    lost = isinstance(exc, sa.DBAPIError) and exc.connection_invalidated
    if lost or isinstance(exc, sa.OperationalError | sa.InterfaceError | psycopg.OperationalError):
        return Unavailable("the database is not answering: try again in a moment", retry_after=5)
    return None


UNGATED = frozenset({"/healthz"})


def may_read_api_docs(request: Request, session: Session) -> bool:
    """In production the API's description is for signed-in people (a page session or an API
    token): it maps every route for whoever asks. Elsewhere anyone may read it."""
    if get_settings().env != "production":
        return True
    # Called, not a dependency: /api/docs is a page under /api/, /openapi.json is read by both.
    if optional_page_user(request, session) is not None:
        return True
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and user_for_token(session, token.strip()) is not None


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Size the request thread pool and the request gate to the database pool (see below)."""
    settings = get_settings()
    connections = settings.db_pool_size + settings.db_pool_overflow
    # Sync routes and dependencies run on anyio's default thread limiter (40 threads by
    # default), each holding a database connection while it works; with more threads than
    # pooled connections the extra threads could only wait in the pool. So: as many threads as
    # connections.
    anyio.to_thread.current_default_thread_limiter().total_tokens = connections
    # That alone is not enough: FastAPI runs a request's dependencies and route in several
    # thread hops, and the request keeps its connection between them. With more requests in
    # flight than connections, every thread can end up waiting for a connection held by a
    # request that waits for a thread, until the pool times out (seen at 4 connections and 50
    # clients: 20 answers in 30 s, all 503). So no more requests in flight than connections:
    # the others wait here, on the event loop, holding nothing.
    app.state.database_gate = anyio.Semaphore(connections)
    # What is loaded by now (the app, its libraries) lives as long as the process. Before this,
    # every fifth load of the embedding map paid a full collection: p95 270 ms, now 140.
    settle()
    yield


async def database_gate(request: Request) -> AsyncIterator[None]:
    """Admit the request once a database connection is sure to be free for it; 503 with
    Retry-After when none frees up within the pool's own checkout timeout."""
    gate: anyio.Semaphore | None = getattr(request.app.state, "database_gate", None)
    if gate is None or request.url.path in UNGATED:  # a bare TestClient runs no lifespan
        yield
        return
    with anyio.move_on_after(get_settings().db_pool_timeout_s) as waiting:
        await gate.acquire()
    if waiting.cancelled_caught:
        raise Unavailable("Sift is busy: try again in a moment", retry_after=1)
    try:
        yield
    finally:
        gate.release()


def create_app() -> FastAPI:
    """Build the application; settings are read (and checked) here."""
    settings = get_settings()
    configure_logging()
    app = FastAPI(
        title="Sift",
        version="0.1.0",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # served below, behind sign-in in production
        lifespan=lifespan,
        # Scope "request": a streamed export keeps its slot (and its connection) to the end.
        # Then text with a NUL character is refused (422 naming the field) before any route runs.
        dependencies=[Depends(database_gate, scope="request"), Depends(refuse_nul_input)],
    )

    @app.exception_handler(SiftError)
    async def sift_error(request: Request, exc: SiftError) -> Response:
        response = _error_response(request, exc.status_code, exc.message, exc.detail)
        if isinstance(exc, Unavailable):
            response.headers["retry-after"] = str(exc.retry_after)
        return response

    @app.exception_handler(sa.SQLAlchemyError)
    @app.exception_handler(psycopg.Error)
    async def database_error(request: Request, exc: Exception) -> Response:
        # A database outage or a lock wait cut short is a 503 the client may retry, never a
        # 500 or a dropped connection.
        trouble = database_trouble(exc)
        if trouble is None and isinstance(exc, sa.DataError | psycopg.DataError):
            # A value PostgreSQL cannot hold (a number past bigint, a NUL in text) that the
            # checks before the database missed: the request's fault, not the server's.
            log.warning("%s %s answered 422: %s", request.method, request.url.path, exc)
            message = "a value in the request is out of range or not valid text"
            return _error_response(request, 422, message, {})
        if trouble is None:
            raise exc
        log.warning("%s %s answered 503: %s", request.method, request.url.path, exc)
        return await sift_error(request, trouble)

    @app.exception_handler(OSError)
    async def path_too_long(request: Request, exc: OSError) -> Response:
        # A path from the request (a model folder) past the file system's name limit: the
        # caller's mistake, whichever check looked at it first.
        if exc.errno != errno.ENAMETOOLONG:
            raise exc
        message = "a path in the request is longer than the file system allows"
        return _error_response(request, 422, message, {})

    @app.exception_handler(StaleDataError)
    async def stale(request: Request, exc: StaleDataError) -> Response:
        return _error_response(request, 409, "the example was changed by someone else", {})

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
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_mb << 20)
    if settings.trusted_proxies:
        # Outermost, so that everything inside sees the client's own address and scheme.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    for domain in DOMAINS:
        if domain.api:
            app.include_router(load(domain.api))
    for domain in DOMAINS:
        if domain.pages:
            app.include_router(load(domain.pages))
    app.mount("/static", StaticFiles(directory=resource("static")), name="static")

    # Outside /api/ it counts as a page: the CSRF dependency (a no-op on GET) as on every page.
    @app.get("/openapi.json", include_in_schema=False, dependencies=[Depends(check_csrf)])
    def openapi(request: Request, session: DB) -> Response:
        if not may_read_api_docs(request, session):
            message = "sign in, or send a bearer token, to read the API's description"
            return JSONResponse({"error": message}, status_code=401)
        return JSONResponse(app.openapi())

    @app.get("/api/docs", include_in_schema=False)
    def api_docs(request: Request, session: DB) -> Response:
        if not may_read_api_docs(request, session):
            return RedirectResponse("/login?next=/api/docs", status_code=303)
        # Swagger UI from static/vendor: FastAPI's own page loads it from a CDN with inline code.
        return templates.TemplateResponse(request, "api_docs.html")

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        # On the event loop and past the gate: a busy server is alive, and says so at once.
        return {"status": "ok"}

    return app
