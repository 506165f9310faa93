"""A bill's usage statement: each device's messages, bytes and usage charge on that bill.

A bill's usage lines sum a month's traffic by offering and direction; a customer with a
thousand devices reconciles that against its own records device by device, and asks which
devices cost the most. The statement answers from the usage records the bill claimed (the
bill run points each at its bill), one line per subscription, so its charges add up to the
bill's usage before rounding: each usage line is rounded to the fen, a device's charge is
given exactly, in micro-yuan (six decimals of a yuan).

A statement is read by device id in pages of at most :data:`CHUNK` devices, from the partial
index on (bill, subscription) that holds billed records only: a page reads its devices'
records and no others, however long the account's history.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from satiot.bss.models import Subscription, UsageRecord
from satiot.bss.money import micro_yuan_text
from satiot.core.csv_text import csv_file
from satiot.core.errors import InvalidInput
from satiot.core.pagination import Page, cut_page, decode_uuid_cursor, walk

COLUMNS: Final = (
    "bill_number",
    "subscription_id",
    "dev_eui",
    "imei",
    "iot_number",
    "uplink_messages",
    "downlink_messages",
    "bytes",
    "billable_bytes",
    "usage_charge_yuan",
)
#: Devices read per statement, at most.
CHUNK: Final = 1_000


@dataclass(frozen=True)
class DeviceUsage:
    """One device's usage on a bill (its identities as its subscription holds them)."""

    subscription_id: uuid.UUID
    dev_eui: str
    imei: str | None
    iot_number: str | None
    uplink_messages: int
    downlink_messages: int
    bytes: int
    billable_bytes: int
    charge_micros: int

    @property
    def charge_yuan(self) -> str:
        """The charge in yuan, exactly (six decimals)."""
        return micro_yuan_text(self.charge_micros)


def device_usage(
    session: Session,
    bill_id: uuid.UUID,
    *,
    after: uuid.UUID | None = None,
    limit: int = CHUNK,
) -> list[DeviceUsage]:
    """The devices on the bill after ``after`` (by subscription id), at most ``limit``.

    Two statements: the records grouped by device (in index order, so the database stops
    after ``limit`` devices), then those devices' identities."""
    if not 1 <= limit <= CHUNK:
        raise ValueError(f"limit must be 1 to {CHUNK}")
    r = UsageRecord
    uplink = func.sum(case((r.kind == "uplink", 1), else_=0))
    stmt = (
        select(
            r.subscription_id,
            func.max(r.dev_eui),
            uplink,
            func.count() - uplink,
            func.sum(r.bytes),
            func.sum(r.billable_bytes),
            func.sum(r.charge_micros),
        )
        .where(r.bill_id == bill_id)
        .group_by(r.subscription_id)
        .order_by(r.subscription_id)
        .limit(limit)
    )
    if after is not None:
        stmt = stmt.where(r.subscription_id > after)
    rows = session.execute(stmt).all()
    if not rows:
        return []
    ids = [row[0] for row in rows]
    identities = {
        s.id: (s.imei, s.iot_number)
        for s in session.execute(
            select(Subscription.id, Subscription.imei, Subscription.iot_number).where(
                Subscription.id.in_(ids)
            )
        )
    }
    out = []
    for sub_id, dev_eui, up, down, size, billable, charge in rows:
        imei, number = identities.get(sub_id, (None, None))
        out.append(
            DeviceUsage(
                sub_id,
                dev_eui,
                imei,
                number,
                int(up),
                int(down),
                int(size),
                int(billable),
                int(charge),
            )
        )
    return out


def statement_page(
    session: Session, bill_id: uuid.UUID, *, cursor: str | None, limit: int
) -> Page[DeviceUsage]:
    """One page of the statement after ``cursor`` (a cursor of an earlier page), as lists are
    paged (:mod:`satiot.core.pagination`)."""
    if not 1 <= limit < CHUNK:
        raise InvalidInput(f"limit must be 1 to {CHUNK - 1}", field="limit")
    after = decode_uuid_cursor(cursor) if cursor else None
    found = device_usage(session, bill_id, after=after, limit=limit + 1)
    return cut_page(found, limit, lambda d: d.subscription_id)


def device_count(session: Session, bill_id: uuid.UUID) -> int:
    """How many devices the bill's statement lists (read from the index alone)."""
    stmt = select(func.count(func.distinct(UsageRecord.subscription_id))).where(
        UsageRecord.bill_id == bill_id
    )
    return int(session.scalar(stmt) or 0)


def export_statement(
    session: Session,
    bill_id: uuid.UUID,
    number: str,
    *,
    chunk: int = CHUNK,
    progress: Callable[[int], None] | None = None,
) -> Iterator[bytes]:
    """The statement as CSV (UTF-8 with a byte-order mark, CRLF), header first, then a piece
    per chunk of devices; ``progress`` is told each chunk's count."""
    pieces = walk(
        lambda after: device_usage(session, bill_id, after=after, limit=chunk),
        lambda d: d.subscription_id,
        chunk,
    )
    return csv_file(COLUMNS, pieces, lambda d: _row(number, d), progress)


def _row(number: str, d: DeviceUsage) -> Sequence[str]:
    return (
        number,
        str(d.subscription_id),
        d.dev_eui,
        d.imei or "",
        d.iot_number or "",
        str(d.uplink_messages),
        str(d.downlink_messages),
        str(d.bytes),
        str(d.billable_bytes),
        d.charge_yuan,
    )


def file_name(number: str) -> str:
    """What a download of the statement of bill ``number`` is saved as."""
    return f"satiot-usage-{number}.csv"
