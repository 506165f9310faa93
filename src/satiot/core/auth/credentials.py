"""API keys and access tokens: issued once in plain text, stored only as SHA-256 hashes.

The secrets are 256-bit random values, so a fast hash is enough (no password stretching is
needed). An API key carries a public prefix so that lookup is one indexed read and the key can
be named in logs and the console without revealing it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from satiot.core.auth.principal import Principal
from satiot.core.auth.roles import ROLES, Role, check_grant
from satiot.core.changes import record_change
from satiot.core.errors import AuthenticationFailed, InvalidInput, NotFound, PermissionDenied
from satiot.core.lengths import plain_text
from satiot.core.models import AccessToken, ApiKey, Tenant, User

API_KEY_PREFIX = "sk"
TOKEN_PREFIX = "at"  # noqa: S105 - a public marker, not a secret


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    secret: str  # shown to the caller once, never stored


def issue_api_key(
    session: Session,
    principal: Principal,
    *,
    name: str,
    scopes: list[str] | None,
    at: datetime,
    expires_at: datetime | None = None,
    user_id: uuid.UUID | None = None,
    machine_role: Role | None = None,
    tenant_id: uuid.UUID | None = None,
) -> IssuedKey:
    """Create a key for a user (default: the caller) or, with ``machine_role``, for a machine.

    A key never carries a scope that its owner's role or the issuing caller lacks.
    """
    if expires_at is not None and expires_at <= at:
        raise InvalidInput("expires_at must be in the future", field="expires_at")
    # The name is how people tell keys apart in the console, the key list and the audit
    # log, so it is plain one-line text, checked here for the API, the CLI and the console.
    name = plain_text(name, ApiKey.name, "name")
    if machine_role is not None:
        if tenant_id is None:
            raise InvalidInput("a machine key needs a tenant", field="tenant_id")
        tenant = session.get(Tenant, tenant_id)
        if tenant is None:
            raise NotFound(f"tenant {tenant_id} not found", field="tenant_id")
        check_grant(principal.role, tenant.kind, machine_role, machine=True)
        owner_role, owner_id, owner_tenant = machine_role, None, tenant_id
    else:
        owner_id = user_id or principal.user_id
        if owner_id is None:
            raise InvalidInput("name the user who owns the key", field="user_id")
        owner = session.get(User, owner_id)
        if owner is None:
            raise NotFound(f"user {owner_id} not found")
        if owner.status != "active":
            raise InvalidInput("the key's owner is disabled", field="user_id")
        owner_role, owner_tenant = Role(owner.role), owner.tenant_id
    allowed = ROLES[owner_role].scopes
    if machine_role is None:
        allowed = allowed & principal.scopes
    wanted = set(scopes) if scopes is not None else set(allowed)
    unknown = wanted - set(ROLES[Role.OPERATOR_ADMIN].scopes)
    if unknown:
        raise InvalidInput(f"unknown scopes: {', '.join(sorted(unknown))}", field="scopes")
    excess = wanted - allowed
    if excess:
        raise PermissionDenied(
            f"scopes beyond what the owner and caller hold: {', '.join(sorted(excess))}",
            field="scopes",
        )
    prefix = secrets.token_hex(6)
    secret = f"{API_KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey(
        tenant_id=owner_tenant,
        user_id=owner_id,
        name=name,
        prefix=prefix,
        secret_hash=_digest(secret),
        role=owner_role.value,
        scopes=sorted(wanted),
        created_at=at,
        expires_at=expires_at,
    )
    session.add(key)
    session.flush()
    summary = {
        "name": name,
        "prefix": prefix,
        "scopes": key.scopes,
        "user_id": str(owner_id),
        "expires_at": expires_at,
    }
    record_change(
        session,
        principal,
        at=at,
        action="api-key.created",
        target=("api-key", key.id),
        tenant_id=key.tenant_id,
        after=summary,
        payload={"prefix": prefix},
    )
    return IssuedKey(key, secret)


def revoke_api_key(
    session: Session, principal: Principal, key_id: uuid.UUID, *, at: datetime, reason: str | None
) -> ApiKey:
    key = session.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"API key {key_id} not found")
    if key.revoked_at is None:
        key.revoked_at = at
        record_change(
            session,
            principal,
            at=at,
            action="api-key.revoked",
            target=("api-key", key.id),
            tenant_id=key.tenant_id,
            before={"revoked_at": None},
            after={"revoked_at": at},
            reason=reason,
            payload={"prefix": key.prefix},
        )
    return key


def _active_owner(session: Session, tenant_id: uuid.UUID, user_id: uuid.UUID | None) -> User | None:
    tenant = session.get(Tenant, tenant_id)
    if tenant is None or tenant.status != "active":
        raise AuthenticationFailed("the credential's tenant is not active")
    if user_id is None:
        return None
    user = session.get(User, user_id)
    if user is None or user.status != "active":
        raise AuthenticationFailed("the credential's user is disabled")
    return user


def authenticate_api_key(session: Session, presented: str, now: datetime) -> Principal:
    """Resolve a presented key to a principal, or raise :class:`AuthenticationFailed`."""
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != API_KEY_PREFIX:
        raise AuthenticationFailed("malformed API key")
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == parts[1]))
    if key is None or not hmac.compare_digest(key.secret_hash, _digest(presented)):
        raise AuthenticationFailed("unknown API key")
    if key.revoked_at is not None:
        raise AuthenticationFailed("the API key was revoked")
    if key.expires_at is not None and key.expires_at <= now:
        raise AuthenticationFailed("the API key has expired")
    user = _active_owner(session, key.tenant_id, key.user_id)
    role = Role(key.role)
    # A key never outgrows its owner's current role, even if the role changed after issue.
    scopes = frozenset(key.scopes) & ROLES[Role(user.role) if user else role].scopes
    return Principal(
        tenant_id=key.tenant_id,
        role=Role(user.role) if user else role,
        scopes=scopes,
        user_id=key.user_id,
        username=user.username if user else None,
        via="api-key",
        credential_id=key.id,
    )


def issue_token(
    session: Session, user: User, *, kind: str, at: datetime, ttl: timedelta
) -> tuple[AccessToken, str]:
    """Issue a bearer token (``kind='bearer'``) or a console session (``kind='session'``)."""
    secret = f"{TOKEN_PREFIX}_{secrets.token_urlsafe(32)}"
    token = AccessToken(
        tenant_id=user.tenant_id,
        user_id=user.id,
        kind=kind,
        token_hash=_digest(secret),
        csrf_token=secrets.token_urlsafe(24) if kind == "session" else None,
        created_at=at,
        expires_at=at + ttl,
    )
    session.add(token)
    return token, secret


def find_token(session: Session, presented: str, kind: str, now: datetime) -> AccessToken:
    """The live token for ``presented``, or raise :class:`AuthenticationFailed`."""
    token = session.scalar(
        select(AccessToken).where(
            AccessToken.token_hash == _digest(presented), AccessToken.kind == kind
        )
    )
    if token is None or token.revoked_at is not None:
        raise AuthenticationFailed("unknown or revoked token")
    if token.expires_at <= now:
        raise AuthenticationFailed("the token has expired")
    return token


def authenticate_token(session: Session, presented: str, kind: str, now: datetime) -> Principal:
    token = find_token(session, presented, kind, now)
    user = _active_owner(session, token.tenant_id, token.user_id)
    assert user is not None
    role = Role(user.role)
    return Principal(
        tenant_id=user.tenant_id,
        role=role,
        scopes=ROLES[role].scopes,
        user_id=user.id,
        username=user.username,
        via=kind,
        credential_id=token.id,
    )
