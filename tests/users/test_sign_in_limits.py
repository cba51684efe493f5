"""Sign-in limits in the database: per name and address, per name, per address, a sliding
window, parallel guesses, and forwarded addresses believed only from configured proxies
(finding 2 of the hardening issue: a spoofed X-Forwarded-For got past the limit)."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import SignInAttempt
from app.models.base import utcnow
from app.platform.db import make_engine, transaction
from app.users.service import create_user
from app.users.sign_in_limits import LIMITS, begin_attempt, failed, succeeded
from tests.conftest import JOBS_DATABASE, migrated_database
from tests.factories import unique
from tests.services import REDIS_URL
from tests.web.live import free_port, server_env, wait_until_up
from tests.web.test_pages import csrf_from


def _fail(session: Session, name: str, address: str, times: int, at: timedelta) -> list[int]:
    now = utcnow() + at
    return [begin_attempt(session, name, address, now=now) for _ in range(times)]


def test_one_name_from_one_address_waits_after_five(session: Session) -> None:
    name = unique("ann")
    assert _fail(session, name, "1.2.3.4", 5, timedelta(0)) == [0] * 5
    wait = begin_attempt(session, name.upper(), "1.2.3.4")  # names in any case
    assert 290 <= wait <= 300
    assert begin_attempt(session, name, "5.6.7.8") == 0  # another address may still try


def test_the_window_slides_and_a_refused_attempt_is_not_counted(session: Session) -> None:
    name = unique("ann")
    _fail(session, name, "1.2.3.4", 5, timedelta(0))
    assert _fail(session, name, "1.2.3.4", 3, timedelta(seconds=100)) != [0, 0, 0]
    # Had the refusals counted, waiting out the first five would not be enough.
    assert begin_attempt(session, name, "1.2.3.4", now=utcnow() + LIMITS.window) == 0


def test_a_name_tried_from_many_addresses_is_limited(session: Session) -> None:
    name = unique("ann")
    for i in range(LIMITS.per_name):
        assert begin_attempt(session, name, f"10.0.{i}.1") == 0
    assert begin_attempt(session, name, "10.9.8.0") > 0


def test_one_password_across_many_names_is_limited_per_address(session: Session) -> None:
    for _ in range(LIMITS.per_address):
        victim = unique("victim")
        assert begin_attempt(session, victim, "6.6.6.6") == 0
        failed(session, victim, "6.6.6.6")
    assert begin_attempt(session, unique("victim"), "6.6.6.6") > 0
    assert begin_attempt(session, unique("victim"), "6.6.6.7") == 0


def test_a_team_behind_one_address_signs_in_at_once_and_a_burst_is_still_capped(
    session: Session,
) -> None:
    # Attempts still being checked are not failures: more than the failure limit of people
    # may be signing in from one address at the same moment.
    team = [begin_attempt(session, unique("member"), "7.7.7.7") for _ in range(60)]
    assert team == [0] * 60
    burst = LIMITS.per_address + LIMITS.in_flight_per_address - 60
    assert [begin_attempt(session, unique("guess"), "7.7.7.7") for _ in range(burst)] == [0] * burst
    assert begin_attempt(session, unique("guess"), "7.7.7.7") > 0


def test_success_forgets_the_pairs_failures(session: Session) -> None:
    name = unique("ann")
    _fail(session, name, "1.2.3.4", 4, timedelta(0))
    succeeded(session, name, "1.2.3.4")
    assert _fail(session, name, "1.2.3.4", 5, timedelta(0)) == [0] * 5


def test_parallel_guesses_cannot_slip_under_the_limit(session: Session) -> None:
    name = unique("ann")
    with ThreadPoolExecutor(16) as pool:
        waits = list(pool.map(lambda _: begin_attempt(session, name, "1.2.3.4"), range(32)))
    assert waits.count(0) == LIMITS.per_name_and_address
    recorded = session.scalar(
        select(func.count()).select_from(SignInAttempt).where(SignInAttempt.name == name)
    )
    assert recorded == LIMITS.per_name_and_address


@pytest.mark.parametrize("trusted", ["", "127.0.0.1"])
def test_forwarded_addresses_count_only_behind_a_trusted_proxy(
    tmp_path: Path, trusted: str
) -> None:
    """`sift serve` itself, not a test server: uvicorn's own default believes X-Forwarded-For
    from loopback."""
    url = migrated_database(f"{JOBS_DATABASE}_sign_in")
    engine = make_engine(url)
    with transaction(engine) as db:
        create_user(db, "ann", "annotator", "correct horse")
    engine.dispose()
    env = server_env(url, tmp_path, SIFT_REDIS_URL=REDIS_URL, SIFT_TRUSTED_PROXIES=trusted)
    port, log = free_port(), tmp_path / "serve.log"
    command = [str(Path(sys.executable).parent / "sift"), "serve", "--no-worker",
               "--port", str(port)]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_up(base, process, log, 60)
        with httpx.Client(base_url=base) as client:
            token = csrf_from(client.get("/login").text)

            def sign_in(password: str, forwarded: str) -> int:
                data = {"name": "ann", "password": password, "csrf_token": token}
                headers = {"x-forwarded-for": forwarded}
                return client.post("/login", data=data, headers=headers).status_code

            statuses = [sign_in("guess", f"10.9.8.{i}") for i in range(LIMITS.per_name_and_address)]
            assert statuses == [400] * LIMITS.per_name_and_address
            spoofed = sign_in("correct horse", "10.9.8.200")
    finally:
        process.terminate()
        process.wait(30)
    # Untrusted: every guess came from 127.0.0.1, so the sixth is refused whatever it claims.
    # Trusted: each claimed address is its own, so a sixth from a new one goes through.
    assert spoofed == (303 if trusted else 429), log.read_text()[-2000:]
