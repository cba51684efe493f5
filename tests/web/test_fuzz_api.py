"""Schemathesis over the API's own OpenAPI description: requests generated from every
operation's schema, a bounded number per operation, and never a 5xx (the hardening issue's
run found 16 failing operations in 20,818 cases). Deterministic (derandomized), so that CI
runs the same cases every time; raise SIFT_TEST_FUZZ_CASES to look further by hand."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.platform.db import get_session
from app.users.service import create_token
from tests.conftest import rolled_back_session
from tests.factories import make_user

CASES = int(os.environ.get("SIFT_TEST_FUZZ_CASES", "8"))


@pytest.fixture(scope="module")
def fuzz_session(engine: Engine) -> Iterator[Session]:
    """One rolled-back session for every generated request."""
    with rolled_back_session(engine) as db:
        yield db


@pytest.fixture(scope="module")
def fuzzed_app(fuzz_session: Session) -> FastAPI:
    """The app as served, on the module's session; a request that fails rolls back to where it
    started, as its own transaction would."""
    from app.entrypoints.web import create_app

    served = create_app()

    def shared_session() -> Iterator[Session]:
        try:
            yield fuzz_session
            fuzz_session.commit()
        except BaseException:
            fuzz_session.rollback()
            raise

    served.dependency_overrides[get_session] = shared_session
    return served


@pytest.fixture(scope="module")
def lead(fuzz_session: Session) -> dict[str, str]:
    """A lead's token: the role that reaches every API operation."""
    user = make_user(fuzz_session, "lead")
    token = create_token(fuzz_session, user)
    fuzz_session.commit()
    return {"authorization": f"Bearer {token}"}


def test_no_generated_request_gets_a_server_error(
    fuzzed_app: FastAPI, lead: dict[str, str]
) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzzed_app)
    failures: list[str] = []
    answered: Counter[int] = Counter()
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=CASES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: Any) -> None:
            response = case.call(headers=lead)
            answered[response.status_code // 100] += 1
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} answered {response.status_code}: "
                    f"{response.text[:300]}\n  {case.as_curl_command()}"
                )

        fuzz()
    # Every API operation, past sign-in: not a schema that failed to load, nor a wrong token.
    assert operations > 40 and answered[2] > 20, (operations, answered)
    assert not failures, "\n".join(failures)
