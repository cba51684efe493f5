"""Pages for signing in and out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from app.core.db import DB
from app.core.security import new_csrf_token
from app.core.web import check_csrf, optional_page_user, render
from app.models import User
from app.users.service import authenticate

# Every state-changing request to these pages must carry the session's CSRF token.
router = APIRouter(dependencies=[Depends(check_csrf)], include_in_schema=False)
MaybeUser = Annotated[User | None, Depends(optional_page_user)]


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
def home() -> RedirectResponse:
    """The studio starts at the list of datasets."""
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
    """Sign in; the same message for an unknown name and a wrong password."""
    user = authenticate(session, name.strip(), password) if name and password else None
    if user is None:
        context = {"next": safe_next(next), "name": name, "error": "Wrong name or password."}
        return render(request, "users/login.html", context, status_code=400)
    request.session.clear()
    request.session["user_id"] = user.id
    request.session["csrf"] = new_csrf_token()  # a token seen before signing in is not reused
    return RedirectResponse(safe_next(next), status_code=303)


@router.post("/logout")
def logout(request: Request) -> RedirectResponse:
    """Sign out: forget everything the session cookie held."""
    request.session.clear()
    return RedirectResponse("/login", status_code=303)
