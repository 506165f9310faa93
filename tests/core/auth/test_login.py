"""Password log-in: the token it issues, and what it refuses."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from satiot.core.auth import login
from satiot.core.auth.credentials import authenticate_token
from satiot.core.auth.roles import Role
from satiot.core.auth.users import authenticate_password, set_user_status
from satiot.core.models import AccessToken, User
from tests.factories import PASSWORD

TTL = timedelta(minutes=30)


def _tokens(db) -> int:
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(AccessToken))


@pytest.mark.parametrize("kind", ["bearer", "session"])
def test_the_secret_it_returns_authenticates_as_the_user(db, world, clock, kind):
    user = world.user(world.tenant(), Role.CUSTOMER_USER, "pilot")
    secret = login.log_in(db, "pilot", PASSWORD, kind=kind, at=clock.now(), ttl=TTL)
    assert secret is not None
    with db.read() as s:
        principal = authenticate_token(s, secret, kind, clock.now())
        assert principal.user_id == user.id
        assert s.get(User, user.id).last_login_at == clock.now()


def test_wrong_credentials_issue_nothing(db, world, clock):
    world.user(world.tenant(), Role.CUSTOMER_USER, "pilot")
    before = _tokens(db)
    for name, password in [("pilot", "not the password"), ("nobody", PASSWORD)]:
        assert login.log_in(db, name, password, kind="bearer", at=clock.now(), ttl=TTL) is None
    assert _tokens(db) == before


def test_an_account_disabled_while_its_password_is_checked_gets_no_token(
    db, world, clock, monkeypatch
):
    user = world.user(world.tenant(), Role.CUSTOMER_USER, "pilot")

    def check_then_disable(session, username, password):
        found = authenticate_password(session, username, password)
        with db.write() as s:
            set_user_status(s, world.system, user.id, "disabled", at=clock.now(), reason=None)
        return found

    monkeypatch.setattr(login, "authenticate_password", check_then_disable)
    before = _tokens(db)
    assert login.log_in(db, "pilot", PASSWORD, kind="bearer", at=clock.now(), ttl=TTL) is None
    assert _tokens(db) == before


def test_other_writers_go_on_while_a_password_is_checked(db, world, clock, monkeypatch):
    """The slow hash runs outside the writer: on SQLite a write from another thread finishes
    during the check instead of queueing behind it."""
    world.user(world.tenant(), Role.CUSTOMER_USER, "pilot")
    other = world.user(world.tenant(), Role.CUSTOMER_USER, "other")
    wrote = threading.Event()
    during_check: list[bool] = []

    def write_elsewhere() -> None:
        with db.write() as s:
            set_user_status(s, world.system, other.id, "disabled", at=clock.now(), reason=None)
        wrote.set()

    def check(session, username, password):
        thread = threading.Thread(target=write_elsewhere)
        thread.start()
        thread.join(10)
        during_check.append(wrote.is_set())
        return authenticate_password(session, username, password)

    monkeypatch.setattr(login, "authenticate_password", check)
    assert login.log_in(db, "pilot", PASSWORD, kind="bearer", at=clock.now(), ttl=TTL)
    assert during_check == [True]
