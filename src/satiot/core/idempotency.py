"""Remembered answers for ``Idempotency-Key`` requests.

The record is written in the same transaction as the thing the request created, so either both
exist or neither does; a retry with the same key and the same request gets the first answer
again, and the same key with a different request is refused.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from satiot.core.errors import Conflict, InvalidInput
from satiot.core.models import IdempotencyRecord

MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class Stored:
    status_code: int
    body: str


def fingerprint(method: str, path: str, body: str) -> str:
    return hashlib.sha256(f"{method}\n{path}\n{body}".encode()).hexdigest()


def check_key(key: str) -> None:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidInput(
            f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} printable characters",
            field="Idempotency-Key",
        )


def lookup(
    session: Session, *, principal: str, key: str, request_hash: str, now: datetime
) -> Stored | None:
    """The stored answer for this key, None if unseen, or Conflict if reused differently."""
    record = session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.principal == principal,
            IdempotencyRecord.key == key,
            IdempotencyRecord.expires_at > now,
        )
    )
    if record is None:
        return None
    if record.request_hash != request_hash:
        raise Conflict(
            "this Idempotency-Key was already used for a different request",
            field="Idempotency-Key",
        )
    return Stored(record.status_code, record.response_body)


def remember(
    session: Session,
    *,
    principal: str,
    key: str,
    method: str,
    path: str,
    request_hash: str,
    status_code: int,
    body: str,
    now: datetime,
    ttl: timedelta,
) -> None:
    # An expired record with the same key would collide with the unique constraint.
    session.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.principal == principal,
            IdempotencyRecord.key == key,
            IdempotencyRecord.expires_at <= now,
        )
    )
    session.add(
        IdempotencyRecord(
            principal=principal,
            key=key,
            method=method,
            path=path,
            request_hash=request_hash,
            status_code=status_code,
            response_body=body,
            created_at=now,
            expires_at=now + ttl,
        )
    )


def purge_expired(session: Session, now: datetime) -> int:
    result = session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= now))
    return int(getattr(result, "rowcount", 0) or 0)
