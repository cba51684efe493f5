"""Pages for signing in and out, and the admins' page for accounts and API tokens."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from app.models import Role, User
from app.platform.db import DB
from app.platform.errors import SiftError
from app.platform.security import new_csrf_token
from app.platform.web import check_csrf, optional_page_user, render, require_page_role
from app.users import service, sign_in_limits
from app.users.service import authenticate

# Every state-changing request to these pages must carry the session's CSRF token.
router = APIRouter(dependencies=[Depends(check_csrf)], include_in_schema=False)
MaybeUser = Annotated[User | None, Depends(optional_page_user)]
PageAdmin = Annotated[User, Depends(require_page_role(Role.ADMIN))]
LOGIN_FAILED = "Wrong name or password."


def safe_next(target: str | None) -> str:
    """`target` when it is a path on this site, "/" otherwise (no open redirects)."""
    if (
        not target
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target)
    ):
        return "/"
    return target


@router.get("/")
def home(user: MaybeUser) -> RedirectResponse:
    """The studio starts at the list of datasets; an annotator's at their review queue."""
    if user is not None and not user.has_role(Role.LEAD):
        return RedirectResponse("/review", status_code=303)
    return RedirectResponse("/datasets", status_code=303)


@router.get("/login", response_model=None)
def login_form(request: Request, user: MaybeUser, next: str = "/") -> Response:
    """The sign-in form; a signed-in user goes straight on."""
    if user is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return render(request, "users/login.html", {"next": safe_next(next), "name": ""})


@router.post("/login", response_model=None)
def login(
    request: Request,
    session: DB,
    name: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    """Sign in; the same message for an unknown name and a wrong password. Failures are
    limited per name and address, per name and per address (`sign_in_limits`)."""
    address = request.client.host if request.client else ""
    context = {"next": safe_next(next), "name": name, "error": LOGIN_FAILED}
    wait = sign_in_limits.begin_attempt(session, name, address)
    if wait:
        context["error"] = f"Too many failed sign-ins: try again in {(wait + 59) // 60} min."
        response = render(request, "users/login.html", context, status_code=429)
        response.headers["retry-after"] = str(wait)
        return response
    user = authenticate(session, name.strip(), password) if name and password else None
    if user is None:  # the attempt stays recorded, as a failure
        sign_in_limits.failed(session, name, address)
        return render(request, "users/login.html", context, status_code=400)
    sign_in_limits.succeeded(session, name, address)
    # A new session: nothing from before signing in (a planted cookie included) carries over.
    request.session.clear()
    request.session["user_id"] = user.id
    request.session["session_version"] = user.session_version
    # For the navigation of pages that get no user (error pages); never for a permission.
    request.session["user_name"], request.session["user_role"] = user.name, user.role
    request.session["csrf"] = new_csrf_token()  # a token seen before signing in is not reused
    return RedirectResponse(safe_next(next), status_code=303)


@router.post("/logout")
def logout(request: Request, session: DB, user: MaybeUser) -> RedirectResponse:
    """Sign out: forget everything the session cookie held, and bump the session version so
    that a copy of the cookie (and of any other browser's) no longer signs anyone in."""
    if user is not None:
        service.sign_out_everywhere(user)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


# ---------------------------------------------------------------- administration


def _users_page(
    request: Request,
    session: Session,
    admin: User,
    *,
    error: str | None = None,
    notice: str | None = None,
    secret: str | None = None,
    form: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    context = {
        "user": admin,
        "section": "admin",
        "users": service.list_users(session),
        "roles": [r.value for r in Role],
        "error": error,
        "notice": notice,
        "secret": secret,
        "form": form or {},
    }
    return _no_store(render(request, "users/list.html", context, status_code=status))


def _user_page(
    request: Request,
    session: Session,
    admin: User,
    target: User,
    *,
    error: str | None = None,
    notice: str | None = None,
    secret: str | None = None,
    secret_kind: str = "password",
    status: int = 200,
) -> HTMLResponse:
    context = {
        "user": admin,
        "section": "admin",
        "target": target,
        "secret_kind": secret_kind,
        "tokens": service.list_tokens(session, target),
        "roles": [r.value for r in Role],
        "error": error,
        "notice": notice,
        "secret": secret,
    }
    return _no_store(render(request, "users/detail.html", context, status_code=status))


def _no_store(response: HTMLResponse) -> HTMLResponse:
    # Pages that may show a password or token once must not stay in any cache.
    response.headers["cache-control"] = "no-store"
    return response


def _back(target: User) -> RedirectResponse:
    return RedirectResponse(f"/admin/users/{target.id}", status_code=303)


@router.get("/admin/users")
def users_page(request: Request, session: DB, admin: PageAdmin) -> HTMLResponse:
    """Every account with its role and state, and a form to add one."""
    return _users_page(request, session, admin)


@router.post("/admin/users")
def add_user(
    request: Request,
    session: DB,
    admin: PageAdmin,
    name: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = "annotator",
    password: Annotated[str, Form()] = "",
) -> HTMLResponse:
    """Create an account; without a password one is generated and shown once."""
    try:
        chosen = service.check_password(password or service.generate_password())
        created = service.create_user(session, name, role, chosen)
    except SiftError as exc:
        form = {"name": name, "role": role}
        return _users_page(request, session, admin, error=exc.message, form=form, status=422)
    notice = f"Created {created.name} ({created.role})."
    return _users_page(request, session, admin, notice=notice, secret=None if password else chosen)


@router.get("/admin/users/{user_id}")
def user_page(request: Request, user_id: int, session: DB, admin: PageAdmin) -> HTMLResponse:
    """One account: role, state, password and API tokens."""
    return _user_page(request, session, admin, service.get_user_by_id(session, user_id))


def _change(request: Request, session: Session, admin: User, target: User, change: Any) -> Response:
    """Apply a change; a refused one is shown on the user's page with its reason."""
    try:
        change()
    except SiftError as exc:
        return _user_page(
            request, session, admin, target, error=exc.message, status=exc.status_code
        )
    return _back(target)


@router.post("/admin/users/{user_id}/role", response_model=None)
def change_role(
    request: Request,
    user_id: int,
    session: DB,
    admin: PageAdmin,
    role: Annotated[str, Form()] = "",
) -> Response:
    """Give an account another role; the last active admin keeps theirs."""
    target = service.get_user_by_id(session, user_id)
    return _change(request, session, admin, target, lambda: service.set_role(session, target, role))


@router.post("/admin/users/{user_id}/active", response_model=None)
def change_active(
    request: Request,
    user_id: int,
    session: DB,
    admin: PageAdmin,
    active: Annotated[bool, Form()] = False,
) -> Response:
    """Deactivate or reactivate an account; nobody deactivates themselves."""
    target = service.get_user_by_id(session, user_id)
    return _change(
        request, session, admin, target, lambda: service.set_active(session, target, active, admin)
    )


@router.post("/admin/users/{user_id}/sign-out", response_model=None)
def sign_out_everywhere(request: Request, user_id: int, session: DB, admin: PageAdmin) -> Response:
    """End every browser session and API token of the account (tokens made later work)."""
    target = service.get_user_by_id(session, user_id)
    service.sign_out_everywhere(target)
    if target.id == admin.id:  # the admin's own session ended too
        request.session["session_version"] = target.session_version
    return _back(target)


@router.post("/admin/users/{user_id}/password")
def reset_password(
    request: Request,
    user_id: int,
    session: DB,
    admin: PageAdmin,
    password: Annotated[str, Form()] = "",
) -> HTMLResponse:
    """Set a new password (generated and shown once when the field is empty)."""
    target = service.get_user_by_id(session, user_id)
    try:
        chosen = service.set_password(target, password or None)
    except SiftError as exc:
        return _user_page(request, session, admin, target, error=exc.message, status=422)
    if target.id == admin.id:  # the admin who changed their own password stays signed in here
        request.session["session_version"] = target.session_version
    secret = None if password else chosen
    return _user_page(request, session, admin, target, notice="Password changed.", secret=secret)


@router.post("/admin/users/{user_id}/tokens")
def add_token(request: Request, user_id: int, session: DB, admin: PageAdmin) -> HTMLResponse:
    """A new API token for the account, shown once."""
    target = service.get_user_by_id(session, user_id)
    token = service.create_token(session, target)
    notice = "Token created: copy it now, it is not shown again."
    return _user_page(
        request, session, admin, target, notice=notice, secret=token, secret_kind="token"
    )


@router.post("/admin/users/{user_id}/tokens/{token_id}/revoke", response_model=None)
def revoke_token(
    request: Request, user_id: int, token_id: int, session: DB, admin: PageAdmin
) -> Response:
    """Revoke one of the account's API tokens."""
    target = service.get_user_by_id(session, user_id)
    service.revoke_token(session, target, token_id)
    return _back(target)
