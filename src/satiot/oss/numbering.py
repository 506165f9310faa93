"""IoT numbers: allocation, the number lifecycle, quarantine and recycling.

Scale. A block MIIT assigns can hold millions of 13-digit numbers, so a block is stored as a
range (``first_number..last_number``) and a number gets a row only when it is first handed
out. ``NumberBlock.next_fresh`` is the lowest number that has never had a row; every row of a
block lies below it. Allocation therefore takes the lowest ``available`` row of the block (a
number back from quarantine, or one of a pre-created chunk) and, when there is none, creates
the next :data:`CHUNK` rows from ``next_fresh`` in one statement. Either way the number handed
out is the lowest one free, and the table only grows with the numbers actually used.

Concurrency. On PostgreSQL an allocator claims a row with ``SELECT … FOR UPDATE SKIP LOCKED``,
so concurrent allocators never wait on each other's candidate nor get the same number; only
the chunk extension takes the block's row lock, and a waiter re-reads the available rows after
it gets the lock (the previous holder's chunk is then visible). On SQLite the caller's writing
unit of work (``Database.write``, ``BEGIN IMMEDIATE``) already holds the single-writer lock.

Quarantine. A cancelled number rests for at least :data:`MIN_QUARANTINE_DAYS` (configured by
``SATIOT_NUMBER_QUARANTINE_DAYS``, never below that) before :func:`recycle` makes it available.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from satiot.core.auth.principal import Principal
from satiot.core.auth.users import require_tenant
from satiot.core.changes import record_change
from satiot.core.errors import Conflict, InvalidInput, NotFound
from satiot.oss import states
from satiot.oss.models import IotNumber, NumberBlock
from satiot.oss.number_blocks import format_number, get_block, validate_number

MIN_QUARANTINE_DAYS = 90
#: Rows created at a time when a block's materialised numbers run out.
CHUNK = 64


class NumbersExhausted(Conflict):
    """No block that fits the request has a free number left."""

    slug = "numbers-exhausted"
    title = "No free IoT number"


def check_quarantine_days(days: int) -> int:
    """``days`` if it is a lawful quarantine period; InvalidInput below the minimum."""
    if days < MIN_QUARANTINE_DAYS:
        raise InvalidInput(
            f"a cancelled number rests at least {MIN_QUARANTINE_DAYS} days (asked: {days})",
            field="quarantine_days",
        )
    return days


def get_number(session: Session, number: str) -> IotNumber:
    """A number that has a row (it has been handed out at least once); NotFound otherwise."""
    row = session.scalar(select(IotNumber).where(IotNumber.number == validate_number(number)))
    if row is None:
        raise NotFound(f"IoT number {number} has never been allocated")
    return row


def _take_available(session: Session, block_id: uuid.UUID) -> IotNumber | None:
    return session.scalar(
        select(IotNumber)
        .where(IotNumber.block_id == block_id, IotNumber.status == "available")
        .order_by(IotNumber.number)
        .limit(1)
        .with_for_update(skip_locked=True)
    )


def _extend(session: Session, block_id: uuid.UUID, at: datetime) -> IotNumber | None:
    """Create the block's next chunk of rows (under its row lock); the lowest of them."""
    block = session.scalar(
        select(NumberBlock)
        .where(NumberBlock.id == block_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert block is not None
    # While we waited for the lock, another allocator may have committed a chunk.
    row = _take_available(session, block_id)
    if row is not None or block.next_fresh > block.last_number:
        return row
    start = block.next_fresh
    end = min(start + CHUNK - 1, block.last_number)
    session.execute(
        insert(IotNumber),
        [
            {
                "number": format_number(n),
                "block_id": block_id,
                "status": "available",
                "created_at": at,
                "updated_at": at,
            }
            for n in range(start, end + 1)
        ],
    )
    block.next_fresh = end + 1
    return _take_available(session, block_id)


def number_view(row: IotNumber) -> dict[str, Any]:
    return {
        "number": row.number,
        "status": row.status,
        "tenant_id": str(row.tenant_id) if row.tenant_id else None,
        "quarantine_until": row.quarantine_until.isoformat() if row.quarantine_until else None,
    }


def _record(
    session: Session,
    principal: Principal,
    row: IotNumber,
    before: dict[str, Any],
    *,
    at: datetime,
    reason: str | None,
) -> None:
    """Audit and announce a move; tagged with the customer that holds or held the number."""
    held_by = row.tenant_id or (uuid.UUID(before["tenant_id"]) if before["tenant_id"] else None)
    record_change(
        session,
        principal,
        at=at,
        action=f"number.{row.status}",
        target=("number", row.number),
        tenant_id=held_by,
        before=before,
        after=number_view(row),
        reason=reason,
    )


def allocate(
    session: Session,
    principal: Principal,
    *,
    tenant_id: uuid.UUID,
    at: datetime,
    block: uuid.UUID | str | None = None,
    purpose: str | None = None,
    reason: str | None = None,
) -> IotNumber:
    """Reserve the lowest free number for ``tenant_id``: from ``block`` if given, else from
    the first block (by range) with ``purpose`` (any purpose if None) that has one left.

    Call it inside a writing unit of work; the number is the customer's once that commits.
    Activation then moves it to ``active`` with :func:`transition`.
    """
    states.NUMBER.check("available", "reserved", principal.role)
    require_tenant(session, tenant_id)
    if block is not None:
        candidates = [get_block(session, block).id]
    else:
        stmt = select(NumberBlock.id).order_by(NumberBlock.first_number)
        if purpose is not None:
            stmt = stmt.where(NumberBlock.purpose == purpose)
        candidates = list(session.scalars(stmt))
    for block_id in candidates:
        row = _take_available(session, block_id) or _extend(session, block_id, at)
        if row is not None:
            break
    else:
        where = (
            f"block {block}"
            if block is not None
            else f"purpose {purpose!r}"
            if purpose
            else "any block"
        )
        raise NumbersExhausted(f"no free IoT number left in {where}")
    before = number_view(row)
    row.status = "reserved"
    row.tenant_id = tenant_id
    row.reserved_at = at
    row.activated_at = row.cancelled_at = row.quarantine_until = None
    row.updated_at = at
    _record(session, principal, row, before, at=at, reason=reason)
    return row


def transition(
    session: Session,
    principal: Principal,
    number: str,
    target: str,
    *,
    at: datetime,
    reason: str | None = None,
    quarantine_days: int = MIN_QUARANTINE_DAYS,
) -> IotNumber:
    """Move a number along its lifecycle (:data:`satiot.oss.states.NUMBER`), audited.

    ``reserved → available`` releases a reservation that was never activated. ``cancelled``
    goes straight on to ``quarantine`` for ``quarantine_days`` (at least 90): the system makes
    that second step, and only :func:`recycle` ends it.
    """
    check_quarantine_days(quarantine_days)
    row = session.scalar(
        select(IotNumber).where(IotNumber.number == validate_number(number)).with_for_update()
    )
    if row is None:
        raise NotFound(f"IoT number {number} has never been allocated")
    return move_number(
        session, principal, row, target, at=at, reason=reason, quarantine_days=quarantine_days
    )


def move_number(
    session: Session,
    principal: Principal,
    row: IotNumber,
    target: str,
    *,
    at: datetime,
    reason: str | None = None,
    quarantine_days: int = MIN_QUARANTINE_DAYS,
) -> IotNumber:
    """:func:`transition` on a number already read and locked (a subscription's move has
    it)."""
    check_quarantine_days(quarantine_days)
    states.NUMBER.check(row.status, target, principal.role)
    before = number_view(row)
    row.status = target
    row.updated_at = at
    if target == "active" and before["status"] == "reserved":
        row.activated_at = at
    elif target == "available":
        row.tenant_id = None
        row.reserved_at = None
    elif target == "cancelled":
        row.cancelled_at = at
    _record(session, principal, row, before, at=at, reason=reason)
    if target == "cancelled":
        states.NUMBER.check("cancelled", "quarantine")
        before = number_view(row)
        row.status = "quarantine"
        row.quarantine_until = at + timedelta(days=quarantine_days)
        _record(session, principal, row, before, at=at, reason=reason)
    return row


def recycle(session: Session, principal: Principal, *, at: datetime, limit: int = 1000) -> int:
    """Make quarantined numbers whose rest ended by ``at`` available again; how many.

    A daily job; ``limit`` bounds one transaction, so run it until it returns less than that.
    """
    rows = session.scalars(
        select(IotNumber)
        .where(IotNumber.status == "quarantine", IotNumber.quarantine_until <= at)
        .order_by(IotNumber.number)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for row in rows:
        assert row.quarantine_until is not None and row.quarantine_until <= at
        states.NUMBER.check(row.status, "available")
        before = number_view(row)
        row.status = "available"
        row.tenant_id = None
        row.reserved_at = row.activated_at = row.cancelled_at = row.quarantine_until = None
        row.updated_at = at
        _record(session, principal, row, before, at=at, reason="quarantine over")
    return len(rows)
