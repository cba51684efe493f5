"""Security over every route of the app: who may call what, CSRF, the Content-Security-Policy,
the session cookie, and templates that never mark data as safe.

The routes come from `create_app().routes` (see tests/web/surface.py), so a route added later is
checked without editing these tests. A failure names the route and what it answered.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.models import Role
from app.models.users import ROLE_RANK
from app.platform.db import get_session
from app.platform.security import api_user
from app.users.service import create_token
from tests.conftest import rolled_back_session
from tests.factories import make_user
from tests.web.surface import (
    PUBLIC,
    Endpoint,
    calls,
    checks_csrf,
    endpoints,
    sample_request,
    uses_session,
)

ROOT = Path(__file__).resolve().parents[2]
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
CSRF_REFUSAL = "did not come from Sift"
ROLES = (Role.ANNOTATOR, Role.LEAD, Role.ADMIN)


@pytest.fixture(scope="module")
def shared(engine: Engine) -> Iterator[Session]:
    """One rolled-back session for the whole module: users sign in once per backend."""
    with rolled_back_session(engine) as db:
        yield db


@pytest.fixture(scope="module")
def app(shared: Session) -> FastAPI:
    """The app as served, on the module's session."""
    from app.entrypoints.web import create_app

    served = create_app()

    def shared_session() -> Iterator[Session]:
        yield shared
        shared.commit()

    served.dependency_overrides[get_session] = shared_session
    return served


@pytest.fixture(scope="module")
def routes(app: FastAPI) -> list[Endpoint]:
    """Every method of every route."""
    return endpoints(app)


@dataclass
class Caller:
    """Someone calling the app: a browser (cookies, CSRF token) that also holds an API token."""

    role: Role | None
    browser: TestClient
    csrf: str
    bearer: dict[str, str] = field(default_factory=dict)
    user_name: str = ""

    @property
    def name(self) -> str:
        return str(self.role or "anonymous")


def csrf_from(html: str) -> str:
    """The CSRF token a page's forms carry."""
    found = CSRF_FIELD.search(html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def browser(app: FastAPI) -> TestClient:
    """A browser of its own (its own cookies); server errors come back as 500 answers."""
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture(scope="module")
def callers(app: FastAPI, shared: Session) -> dict[str, Caller]:
    """An anonymous visitor and one signed-in user of each role, with an API token each."""
    anonymous = browser(app)
    found = {"anonymous": Caller(None, anonymous, csrf_from(anonymous.get("/login").text))}
    for role in ROLES:
        user = make_user(shared, role.value)
        signed_in = browser(app)
        form = {"csrf_token": csrf_from(signed_in.get("/login").text)}
        form |= {"name": user.name, "password": "correct horse"}
        assert signed_in.post("/login", data=form, follow_redirects=False).status_code == 303
        bearer = {"authorization": f"Bearer {create_token(shared, user)}"}
        csrf = csrf_from(signed_in.get("/jobs").text)
        found[role.value] = Caller(role, signed_in, csrf, bearer, user.name)
    return found


def call(
    caller: Caller,
    endpoint: Endpoint,
    *,
    bearer: dict[str, str] | None = None,
    csrf: str | None = None,
) -> Response:
    """Call an endpoint with its required parameters filled and its path naming nothing."""
    request = sample_request(endpoint)
    headers = request.pop("headers") | (caller.bearer if bearer is None else bearer)
    if endpoint.unsafe and not endpoint.api:
        headers["x-csrf-token"] = caller.csrf if csrf is None else csrf
    return caller.browser.request(
        endpoint.method, endpoint.url(), headers=headers, follow_redirects=False, **request
    )


def gist(response: Response) -> str:
    """The message of an answer, short: an error page's text or the start of a JSON body."""
    found = re.search(
        r'<section class="card narrow error-page">(.*?)</section>', response.text, re.S
    )
    text = re.sub(r"<[^>]+>", " ", found.group(1)) if found else response.text
    return " ".join(text.split())[:160]


def verdict(endpoint: Endpoint, caller: Caller, response: Response) -> str | None:
    """What is wrong with the answer, or None."""
    status = response.status_code
    if status >= 500:
        return f"answered {status}"
    required = endpoint.role
    assert required is not None
    if caller.role is None:
        if endpoint.api and status != 401:
            return f"answered {status} without a token (expected 401)"
        target = response.headers.get("location", "")
        if not endpoint.api and not (status == 303 and target.startswith("/login?next=")):
            return f"answered {status} {target} signed out (expected 303 to /login)"
    elif ROLE_RANK[caller.role] < ROLE_RANK[required]:
        if status != 403:
            return f"answered {status} (expected 403: the route needs {required})"
    elif status in (401, 403):
        return f"answered {status} to an allowed role"
    elif endpoint.path_params and status != 404 and not endpoint.creates:
        return f"answered {status} for ids and names that do not exist (expected 404)"
    return None


def test_every_route_needs_a_role_unless_public(routes: list[Endpoint]) -> None:
    open_routes = [str(e) for e in routes if e.role is None and not e.public]
    assert not open_routes, f"routes with no role dependency: {open_routes}"


def test_the_public_allow_list_names_real_routes(routes: list[Endpoint]) -> None:
    served = {(e.method, e.path) for e in routes}
    assert not PUBLIC - served, f"stale entries: {sorted(PUBLIC - served)}"
    assert all(e.role is None for e in routes if e.public)


def test_api_routes_take_tokens_and_pages_take_the_session(routes: list[Endpoint]) -> None:
    # An API route that read the session cookie would be open to cross-site requests.
    wrong = [
        str(e)
        for e in routes
        if e.dependant
        and (
            (e.api and uses_session(e.dependant)) or (not e.api and api_user in calls(e.dependant))
        )
    ]
    assert not wrong, f"routes that authenticate the wrong way: {wrong}"


def test_every_page_route_checks_csrf(routes: list[Endpoint]) -> None:
    pages = [e for e in routes if not e.api and e.dependant is not None and e.path != "/healthz"]
    assert pages
    unchecked = [str(e) for e in pages if e.dependant and not checks_csrf(e.dependant)]
    assert not unchecked, f"page routes without the CSRF dependency: {unchecked}"


def test_the_authorisation_matrix(routes: list[Endpoint], callers: dict[str, Caller]) -> None:
    """Every guarded route called by everyone: 401 or sign-in, 403 below its role, else 404."""
    problems = []
    guarded = [e for e in routes if e.role is not None]
    assert len(guarded) > 30
    for endpoint in guarded:
        for caller in callers.values():
            # Signed out: an API call with the admin's session cookie but no token, and a page
            # request with the admin's token but no cookie; neither may let them in.
            if caller.role is None:
                admin = callers["admin"]
                if endpoint.api:  # the admin's browser session, but no token
                    response = call(Caller(None, admin.browser, admin.csrf), endpoint, bearer={})
                else:  # a fresh browser holding the admin's token, but no session
                    response = call(caller, endpoint, bearer=admin.bearer)
            else:
                response = call(caller, endpoint)
            problem = verdict(endpoint, caller, response)
            if problem:
                problems.append(f"{endpoint} as {caller.name}: {problem}: {gist(response)}")
    assert not problems, "\n".join(problems)


SENSITIVE = {
    "export": (re.compile(r"/(export|download)"), Role.LEAD, False),
    "training": (re.compile(r"/train"), Role.LEAD, True),
    "user management": (re.compile(r"^/(admin/users|api/v1/users|users)(/|$)"), Role.ADMIN, False),
}


@pytest.mark.parametrize("concern", sorted(SENSITIVE))
def test_annotators_cannot_export_train_or_manage_users(
    concern: str, routes: list[Endpoint], callers: dict[str, Caller]
) -> None:
    pattern, role, unsafe_only = SENSITIVE[concern]
    matching = [e for e in routes if pattern.search(e.path) and (e.unsafe or not unsafe_only)]
    if not matching:
        pytest.skip(f"no {concern} route is served yet")
    too_open = [
        f"{e} needs only {e.role}"
        for e in matching
        if ROLE_RANK[e.role or "annotator"] < ROLE_RANK[role]
    ]  # type: ignore[index]
    assert not too_open
    annotator = callers["annotator"]
    answers = {str(e): call(annotator, e).status_code for e in matching}
    assert set(answers.values()) == {403}, answers


def test_unsafe_pages_refuse_a_missing_or_wrong_csrf_token(
    routes: list[Endpoint], callers: dict[str, Caller]
) -> None:
    admin = callers["admin"]
    unsafe = [e for e in routes if e.unsafe and not e.api]
    assert len(unsafe) >= 5
    problems = []
    for endpoint in unsafe:
        request = sample_request(endpoint)
        del request["headers"]
        form = request.get("data")
        attempts = {
            "no token": {},
            "a wrong header": {"headers": {"x-csrf-token": admin.csrf[::-1]}},
        }
        if form is not None:
            attempts["a wrong form field"] = {"data": form | {"csrf_token": "forged"}}
        for attempt, extra in attempts.items():
            response = admin.browser.request(
                endpoint.method, endpoint.url(), follow_redirects=False, **(request | extra)
            )
            if response.status_code != 403 or CSRF_REFUSAL not in response.text:
                problems.append(f"{endpoint} with {attempt}: {response.status_code}")
    assert not problems, "\n".join(problems)
    assert admin.browser.get("/jobs").status_code == 200  # still signed in


def policy_problems(response: Response) -> list[str]:
    """What is wrong with a response's Content-Security-Policy."""
    policy = response.headers.get("content-security-policy")
    if not policy:
        return ["no Content-Security-Policy"]
    directives = {
        d.split()[0]: d.split()[1:] for d in (p.strip() for p in policy.split(";")) if d.strip()
    }
    problems = [
        f"{bad} in the policy" for bad in ("'unsafe-inline'", "'unsafe-eval'") if bad in policy
    ]
    for name in ("script-src", "style-src"):
        if directives.get(name) != ["'self'"]:
            problems.append(f"{name} is {directives.get(name)}, not 'self'")
    if directives.get("object-src") != ["'none'"]:
        problems.append("object-src is not 'none'")
    return problems


def inline_code(html: str) -> list[str]:
    """Inline scripts and styles, event attributes, scripts and styles from other sites: the
    policy blocks them all, so a page that has any is broken in a browser."""
    found = re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    found += re.findall(r"<style\b[^>]*>", html)
    found += re.findall(r"<[^>]+\sstyle=[^>]*>", html)
    found += re.findall(r"<[^>]+\son[a-z]+=[^>]*>", html)
    found += re.findall(r"<(?:script|link)\b[^>]*(?:src|href)=[\"']?(?:https?:)?//[^>]*>", html)
    return found


def test_every_page_carries_the_policy_and_no_inline_code(
    routes: list[Endpoint], callers: dict[str, Caller]
) -> None:
    pages = [e for e in routes if e.method == "GET"]  # JSON too: the API docs are HTML
    problems = []
    for endpoint in pages:
        for caller in (callers["anonymous"], callers["admin"]):
            response = caller.browser.get(endpoint.url(), follow_redirects=False)
            found = policy_problems(response)
            if "text/html" in response.headers.get("content-type", ""):
                found += [f"blocked by the policy: {c}" for c in inline_code(response.text)]
            problems += [f"{endpoint} as {caller.name}: {p}" for p in found]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "path", ["/static/app.css", "/static/vendor/htmx.min.js", "/static/favicon.svg"]
)
def test_static_files_carry_the_policy(app: FastAPI, path: str) -> None:
    response = browser(app).get(path)
    assert response.status_code == 200
    assert policy_problems(response) == []
    assert response.headers["x-content-type-options"] == "nosniff"


def test_the_session_cookie_is_http_only_and_same_site(
    app: FastAPI, callers: dict[str, Caller]
) -> None:
    visitor = browser(app)
    form = {"csrf_token": csrf_from(visitor.get("/login").text)}
    form |= {"name": callers["annotator"].user_name, "password": "correct horse"}
    response = visitor.post("/login", data=form, follow_redirects=False)
    assert response.status_code == 303
    cookie = next(
        c for c in response.headers.get_list("set-cookie") if c.startswith("sift_session=")
    )
    attributes = {a.strip().split("=")[0].lower(): a for a in cookie.split(";")[1:]}
    assert "httponly" in attributes
    assert attributes["samesite"].split("=")[1].strip().lower() in ("lax", "strict")


# Reviewed places where markup is trusted: each one must say why it is safe.
REVIEWED_SAFE: dict[str, str] = {}
REVIEWED_MARKUP = {
    "app/platform/markdown.py": "Markdown rendered with raw HTML off, then cleaned by nh3",
}


def template_files() -> Iterator[Path]:
    """Every Jinja template."""
    yield from sorted((ROOT / "templates").rglob("*.html"))


def test_no_template_marks_data_as_safe() -> None:
    found = []
    for path in template_files():
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"\|\s*safe\b|autoescape\s+false", line):
                place = f"{path.relative_to(ROOT)}:{line.strip()}"
                if place not in REVIEWED_SAFE:
                    found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not found, "unreviewed |safe or autoescape false:\n" + "\n".join(found)


def test_only_the_markdown_renderer_builds_markup() -> None:
    found = sorted(
        str(path.relative_to(ROOT))
        for path in (ROOT / "app").rglob("*.py")
        if re.search(r"\bMarkup\(|autoescape\s*=\s*False", path.read_text())
    )
    assert found == sorted(REVIEWED_MARKUP), found
