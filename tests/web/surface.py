"""The app's routes as the security tests see them: each route's method, path and the role its
dependencies demand, and a request built to get past validation to the route's own code.

Everything here is derived from `create_app().routes`, so a route added later is covered by the
tests without editing them.
"""

from __future__ import annotations

import inspect
import itertools
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.params import Body, File, Form, Header, Query
from fastapi.routing import iter_route_contexts
from pydantic import TypeAdapter

from app.models import Role
from app.models.users import ROLE_RANK
from app.platform.security import api_user
from app.platform.web import check_csrf, optional_page_user, page_user

# Routes anyone may call: signing in and out, health, the static files, the API's description.
PUBLIC = frozenset(
    {
        ("GET", "/"),
        ("GET", "/login"),
        ("POST", "/login"),
        ("POST", "/logout"),
        ("GET", "/healthz"),
        ("GET", "/openapi.json"),
        ("GET", "/api/docs"),
    }
)
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# A path parameter that names nothing that exists: a big id, an unused name.
MISSING_ID = 2_000_000_000
MISSING_NAME = "no-such-thing-0x5eed"
# Valid values for fields that the routes check against what exists (a scorer, an action...),
# so that a request gets as far as looking up the ids and names in its path.
HINTS: dict[str, Any] = {
    "scorer": "length",
    "action": "accept",
    "method": "random",
    "format": "alpaca",
    "role": "annotator",
    "version": 1,
    "budget": 1,
}
# Routes that create what their path names (an import into a new dataset): they need not 404.
CREATES_BY_NAME = frozenset({("POST", "/api/v1/datasets/{name}/imports")})
_fresh = itertools.count(1)
PARAMETER = re.compile(r"\{(\w+)(?::\w+)?\}")


def _takes_a_number(info: Any) -> bool:
    """True for a path parameter that is an id: an int, or text whose pattern a number fits
    (a snapshot by its number or digest)."""
    if info is None:
        return False
    if info.annotation is int:
        return True
    patterns = [getattr(m, "pattern", None) for m in info.metadata]
    return any(p and re.fullmatch(p.strip("^$"), str(MISSING_ID)) for p in patterns)


@dataclass(frozen=True)
class Endpoint:
    """One method of one route."""

    method: str
    path: str
    dependant: Dependant | None

    @property
    def api(self) -> bool:
        """True for the JSON API (bearer tokens), False for browser pages (session + CSRF)."""
        return self.path.startswith("/api/")

    @property
    def unsafe(self) -> bool:
        """True for a method that changes state."""
        return self.method in UNSAFE

    @property
    def public(self) -> bool:
        """True for a route on the public allow-list."""
        return (self.method, self.path) in PUBLIC

    @property
    def creates(self) -> bool:
        """True for a route that creates what its path names (so an unknown name is no 404)."""
        return (self.method, self.path) in CREATES_BY_NAME

    @property
    def role(self) -> Role | None:
        """The least role that may call it (None: no sign-in needed), from its dependencies."""
        return required_role(self.dependant) if self.dependant else None

    @property
    def path_params(self) -> list[str]:
        """The names of its path parameters, in order."""
        return PARAMETER.findall(self.path)

    def url(self, values: Mapping[str, Any] | None = None) -> str:
        """The path with parameters filled from `values`, else with values that name nothing."""
        fields = {f.name: f.field_info for f in self.params("path_params")}

        def fill(match: re.Match[str]) -> str:
            name = match.group(1)
            if values and name in values:
                value = values[name]
            elif _takes_a_number(fields.get(name)):
                value = MISSING_ID
            else:
                # A fresh name each time: a route that creates by name must not feed the next.
                value = f"{MISSING_NAME}-{next(_fresh)}"
            return quote(str(value), safe="")

        return PARAMETER.sub(fill, self.path)

    def params(self, kind: str) -> Iterator[Any]:
        """The route's parameters of one kind (query_params, body_params...), dependencies too."""
        for dependant in walk(self.dependant) if self.dependant else ():
            yield from getattr(dependant, kind)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def walk(dependant: Dependant) -> Iterator[Dependant]:
    """A dependant and all its sub-dependencies, depth first."""
    yield dependant
    for sub in dependant.dependencies:
        yield from walk(sub)


def calls(dependant: Dependant) -> list[Callable[..., Any]]:
    """Every dependency function a route runs."""
    return [d.call for d in walk(dependant) if d.call is not None]


def required_role(dependant: Dependant) -> Role | None:
    """The highest role any dependency demands; annotator for a bare sign-in; None if public.

    `require_page_role(role)` and `require_api_role(role)` return closures over `role`, so the
    role is read from the closure's variables.
    """
    found: Role | None = None
    for call in calls(dependant):
        if call in (page_user, api_user):
            role: Role | None = Role.ANNOTATOR
        else:
            closed = inspect.getclosurevars(call).nonlocals if inspect.isfunction(call) else {}
            role = next((v for v in closed.values() if isinstance(v, Role)), None)
        if role is not None and (found is None or ROLE_RANK[role] > ROLE_RANK[found]):
            found = role
    return found


def uses_session(dependant: Dependant) -> bool:
    """True when the route reads the browser session's user."""
    return optional_page_user in calls(dependant)


def checks_csrf(dependant: Dependant) -> bool:
    """True when the route runs the CSRF check."""
    return check_csrf in calls(dependant)


def endpoints(app: FastAPI) -> list[Endpoint]:
    """Every method of every route of the app (HEAD and mounts such as /static left out)."""
    found = []
    for route in iter_route_contexts(app.routes):
        path = route.path
        for method in sorted(route.methods or ()):
            if method == "HEAD" or path is None:
                continue
            found.append(Endpoint(method, path, getattr(route, "dependant", None)))
    return found


def sample(schema: dict[str, Any], defs: dict[str, Any], name: str = "") -> Any:
    """The smallest value a JSON schema accepts, as far as it can tell (or the hint for `name`)."""
    if "$ref" in schema:
        return sample(defs[schema["$ref"].rsplit("/", 1)[-1]], defs, name)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = [s for s in schema.get(key, []) if s.get("type") != "null"]
        if options:
            return sample(options[0], defs, name)
    kind = schema.get("type")
    if name in HINTS and kind in ("string", "integer", None):
        return HINTS[name]
    if kind == "string":
        if schema.get("format") == "date-time":
            return "2024-01-01T00:00:00Z"
        return "x" * max(1, schema.get("minLength", 1))
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0) + 1)
        return max(low, 1) if kind == "integer" else float(max(low, 1))
    if kind == "boolean":
        return False
    if kind == "array":
        return [sample(schema.get("items", {}), defs) for _ in range(schema.get("minItems", 0))]
    if kind == "object":
        properties = schema.get("properties", {})
        return {k: sample(properties.get(k, {}), defs, k) for k in schema.get("required", [])}
    return None


def sample_of(annotation: Any, name: str = "") -> Any:
    """The smallest value of a Python type (or the hint for its name), through its JSON schema."""
    schema = TypeAdapter(annotation).json_schema()
    return sample(schema, schema.get("$defs", {}), name)


def sample_request(endpoint: Endpoint) -> dict[str, Any]:
    """Keyword arguments for a test client's request that fill every required parameter."""
    query = {
        f.alias: sample_of(f.field_info.annotation, f.alias)
        for f in endpoint.params("query_params")
        if isinstance(f.field_info, Query) and f.field_info.is_required()
    }
    headers = {
        f.alias.replace("_", "-"): str(sample_of(f.field_info.annotation, f.alias))
        for f in endpoint.params("header_params")
        if isinstance(f.field_info, Header) and f.field_info.is_required()
    }
    if endpoint.method in ("PATCH", "PUT"):
        headers.setdefault("if-match", "1")  # optimistic locking: some routes read it by hand
    request: dict[str, Any] = {"params": query, "headers": headers}
    body = list(endpoint.params("body_params"))
    if any(isinstance(f.field_info, Form) for f in body):  # File is a kind of Form
        files = {f.alias: ("upload.json", b"[]", "application/json") for f in body if _is_file(f)}
        request["files"] = files or None
        # Every field, optional ones too: a form route may need what its schema leaves optional.
        request["data"] = {
            f.alias: sample_of(f.field_info.annotation, f.alias) for f in body if not _is_file(f)
        }
    elif not body and endpoint.unsafe and not endpoint.api:
        # A page route that reads its form by hand: send the fields such forms carry.
        request["data"] = dict(HINTS)
    elif len(body) == 1 and not getattr(body[0].field_info, "embed", False):
        request["json"] = sample_of(body[0].field_info.annotation)
    elif body:
        request["json"] = {
            f.alias: sample_of(f.field_info.annotation, f.alias)
            for f in body
            if isinstance(f.field_info, Body)
        }
    return request


def _is_file(field: Any) -> bool:
    return isinstance(field.field_info, File)
