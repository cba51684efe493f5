"""`sift user add` and `sift token create`."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from app.platform.cli.console import fail, out, user_errors
from app.platform.db import transaction

commands = typer.Typer()
user_cli = typer.Typer(help="Accounts.", no_args_is_help=True)
token_cli = typer.Typer(help="API tokens.", no_args_is_help=True)
commands.add_typer(user_cli, name="user")
commands.add_typer(token_cli, name="token")


@user_cli.command("add")
def user_add(
    name: str,
    role: Annotated[str, typer.Option(help="admin, lead or annotator")] = "annotator",
    password_stdin: Annotated[bool, typer.Option("--password-stdin")] = False,
    if_missing: Annotated[
        bool, typer.Option("--if-missing", help="do nothing if it exists")
    ] = False,
) -> None:
    """Create an account; without --password-stdin a password is generated and shown once."""
    from app.users import service

    password = sys.stdin.readline().rstrip("\n") if password_stdin else service.generate_password()
    if password_stdin and len(password) < 8:
        fail("the password must be at least 8 characters")
    with user_errors(), transaction() as session:
        if if_missing and service.user_exists(session, name):
            return
        service.create_user(session, name, role, password)
    out.print(f"created {role} {name!r}")
    if not password_stdin:
        out.print(f"password: {password}  (shown once; keep it somewhere safe)")


@token_cli.command("create")
def token_create(user: str) -> None:
    """Print a new API token for USER."""
    from app.users import service

    with user_errors(), transaction() as session:
        token = service.create_token(session, service.get_user(session, user))
    print(token)
