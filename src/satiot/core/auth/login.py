"""Password log-in: check the password, then record the log-in and issue its token.

The password check (Argon2, tens of milliseconds by design) runs in a reading unit of work, so
it never holds the embedded database's single writer while other writers wait; the short
write after it looks again that the account and its tenant are still active.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from satiot.core.auth.credentials import issue_token
from satiot.core.auth.users import authenticate_password
from satiot.core.db import Database
from satiot.core.models import Tenant, User


def log_in(
    db: Database, username: str, password: str, *, kind: str, at: datetime, ttl: timedelta
) -> str | None:
    """The secret of a new token (``bearer`` or console ``session``), or None when the
    credentials are wrong or the account or its tenant is not active."""
    with db.read() as session:
        found = authenticate_password(session, username, password)
        if found is None:
            return None
        user_id = found.id
    with db.write() as session:
        user = session.get(User, user_id)
        if user is None or user.status != "active":
            return None
        tenant = session.get(Tenant, user.tenant_id)
        if tenant is None or tenant.status != "active":
            return None
        user.last_login_at = at
        _token, secret = issue_token(session, user, kind=kind, at=at, ttl=ttl)
    return secret
