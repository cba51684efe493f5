"""Examples a lead assigns to annotators: an assigned example is handed to its assignees first,
and to nobody else; one without assignees is open to everyone, as before."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, delete, exists, func, insert, literal, select
from sqlalchemy.orm import Session

from app.models import Example, ReviewAssignment, User
from app.platform.errors import InvalidInput, NotFound
from app.users.service import get_user

# Names a lead may give at once ("alice, bob" for a collection reviewed by two).
MAX_ASSIGNEES = 20


def assignees(session: Session, names: str) -> list[User]:
    """The users named in a comma-separated list (blank: nobody); InvalidInput for a name
    that is no active account."""
    wanted = list(dict.fromkeys(n.strip() for n in names.split(",") if n.strip()))
    if len(wanted) > MAX_ASSIGNEES:
        raise InvalidInput(f"value: at most {MAX_ASSIGNEES} annotators at once", field="value")
    users = []
    for name in wanted:
        try:
            user = get_user(session, name)
        except NotFound as exc:  # say which field of the form is wrong
            raise InvalidInput(f"value: no user called {name!r}", field="value") from exc
        if not user.is_active:
            raise InvalidInput(f"value: {name!r} is deactivated", field="value")
        users.append(user)
    return users


def assign(session: Session, lead: User, ids: Select[Any], users: list[User]) -> dict[str, int]:
    """Make `users` the assignees of the examples `ids` selects (none: open them to everyone
    again). Set-based: one DELETE of the assignments that go, one INSERT of those that come;
    running it again changes nothing."""
    matched = session.scalar(select(func.count()).select_from(ids.subquery())) or 0
    keep = [u.id for u in users]
    dropped = session.execute(
        delete(ReviewAssignment)
        .where(ReviewAssignment.example_id.in_(ids), ReviewAssignment.user_id.not_in(keep))
        .execution_options(synchronize_session=False)
    )
    added = 0
    for user in users:
        missing = ids.where(
            ~exists().where(
                ReviewAssignment.example_id == Example.id, ReviewAssignment.user_id == user.id
            )
        ).with_only_columns(Example.id, literal(user.id), literal(lead.id))
        result = session.execute(
            insert(ReviewAssignment)
            .from_select(["example_id", "user_id", "assigned_by_id"], missing)
            .returning(ReviewAssignment.example_id)
        )
        added += len(result.all())
    removed = getattr(dropped, "rowcount", 0)
    return {"matched": matched, "changed": added + removed, "assigned": added,
            "unassigned": removed}  # fmt: skip


def open_to(user: User) -> Any:
    """Examples this user may be handed: without assignees, or assigned to them."""
    other = exists().where(
        ReviewAssignment.example_id == Example.id, ReviewAssignment.user_id != user.id
    )
    mine = exists().where(
        ReviewAssignment.example_id == Example.id, ReviewAssignment.user_id == user.id
    )
    return ~other | mine


def has_any(session: Session, user: User) -> bool:
    """Whether anything at all is assigned to this user (one probe of an index)."""
    found = select(ReviewAssignment.example_id).where(ReviewAssignment.user_id == user.id)
    return session.scalar(found.limit(1)) is not None


def assigned_to(user: User) -> Any:
    """Examples assigned to this user (handed out before the rest)."""
    return Example.id.in_(
        select(ReviewAssignment.example_id).where(ReviewAssignment.user_id == user.id)
    )


def assignees_of(session: Session, example_ids: list[int]) -> dict[int, list[str]]:
    """Example id -> the names of its assignees, for the tables."""
    if not example_ids:
        return {}
    rows = session.execute(
        select(ReviewAssignment.example_id, User.name)
        .join(User, User.id == ReviewAssignment.user_id)
        .where(ReviewAssignment.example_id.in_(example_ids))
        .order_by(User.name)
    )
    found: dict[int, list[str]] = {}
    for example_id, name in rows:
        found.setdefault(example_id, []).append(name)
    return found
