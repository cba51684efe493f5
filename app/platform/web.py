"""Server-rendered pages: templates, the signed-in user, CSRF, fragment-or-page rendering."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from app.models import Role, User
from app.platform.db import get_session
from app.platform.errors import Conflict, Forbidden, SiftError
from app.platform.markdown import render_markdown
from app.platform.resources import resource
from app.platform.security import csrf_matches, new_csrf_token

templates = Jinja2Templates(directory=resource("templates"))
templates.env.filters["markdown"] = render_markdown
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class LoginRequired(SiftError):
    status_code = 401


def csrf_token(request: Request) -> str:
    """The browser session's CSRF token, created on first use."""
    token = request.session.get("csrf")
    if not token:
        token = new_csrf_token()
        request.session["csrf"] = token
    return str(token)


async def check_csrf(request: Request) -> None:
    """Refuse a state-changing browser request without the session's CSRF token."""
    if request.method not in UNSAFE_METHODS:
        return
    given = request.headers.get("x-csrf-token")
    if given is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        given = str((await request.form()).get("csrf_token") or "")
    if not csrf_matches(request.session.get("csrf"), given):
        raise Forbidden("the form has expired or did not come from Sift: reload and try again")


def optional_page_user(
    request: Request, session: Session = Depends(get_session, scope="function")
) -> User | None:
    """The signed-in user of a browser session, or None. The cookie must carry the user's
    current session version: logout, a password change, deactivation and "sign out
    everywhere" bump it, so a copy of an older cookie signs nobody in."""
    user_id = request.session.get("user_id")
    if user_id is None:
        return None
    user = session.get(User, user_id)
    version = request.session.get("session_version")
    if user is None or not user.is_active or version != user.session_version:
        request.session.clear()
        return None
    return user


def page_user(user: User | None = Depends(optional_page_user)) -> User:
    """The signed-in user; anonymous visitors are sent to the login page."""
    if user is None:
        raise LoginRequired("please sign in")
    return user


def require_page_role(role: Role) -> Any:
    """A dependency that admits signed-in users whose role is at least `role`."""

    def dependency(user: User = Depends(page_user)) -> User:
        if not user.has_role(role):
            raise Forbidden(f"this page needs the {role} role")
        return user

    return dependency


def is_htmx(request: Request) -> bool:
    """True for a request made by htmx (which wants a fragment, not a whole page)."""
    return request.headers.get("hx-request") == "true"


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    fragment: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """The whole page, or only `fragment` (a template) when htmx asks."""
    name = fragment if fragment and is_htmx(request) else template
    values = {"request": request, "csrf_token": csrf_token(request), **(context or {})}
    return templates.TemplateResponse(request, name, values, status_code=status_code)


def act(
    request: Request,
    action: Callable[[], Any],
    refreshed: Callable[[str | None], Response],
    done: str,
) -> Response:
    """Do `action` from a page's button: htmx gets `refreshed(notice)`, a form post a redirect
    to `done`. An object that moved on meanwhile (finished, resumed: a Conflict) is a notice
    beside the refreshed fragment, or an error page for a form post."""
    notice = None
    try:
        action()
    except Conflict as exc:
        notice = exc.message
    if is_htmx(request):
        return refreshed(notice)
    if notice is not None:
        raise Conflict(notice)
    return RedirectResponse(done, status_code=303)


def error_page(request: Request, status: int, message: str) -> Response:
    """An error as a page, or as a message fragment for htmx (static/errors.js shows it near
    what was clicked); anonymous visitors are sent to sign in instead."""
    if status == 401:
        target = f"/login?next={quote(request.url.path)}"
        if is_htmx(request):  # a polling fragment must not swap the login page into itself
            return Response(status_code=204, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)
    context = {"status": status, "message": message}
    if is_htmx(request):
        # htmx swaps no 4xx/5xx answer: errors.js reads the message out of this fragment.
        # No swap here either, should htmx ever be configured to swap errors.
        response = render(request, "components/error_message.html", context, status_code=status)
        response.headers["HX-Reswap"] = "none"
        return response
    return render(request, "error.html", context, status_code=status)


# Route parameters: the signed-in browser user, and one who is at least a lead.
PageUser = Annotated[User, Depends(page_user)]
PageLead = Annotated[User, Depends(require_page_role(Role.LEAD))]
