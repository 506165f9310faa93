"""A bill's device statement: each device's fees, messages, bytes and usage charge on that bill.

A bill's lines sum a month by offering: its fees ("1,000 devices, prorated") and its traffic by
direction; a customer with a thousand devices reconciles that against its own records device
by device, asks which devices cost the most, and which it paid a monthly fee for while they
sent nothing. The statement answers with one line per device: its days of service and fees as
the bill run computed them (:mod:`satiot.bss.device_fees`), and its usage from the records the
bill claimed (the run points each at its bill), so that its columns add up to the bill's lines
before rounding: each line is rounded to the fen, a device's charges are given exactly, in
micro-yuan (six decimals of a yuan). Bills issued before the run kept fees per device list
usage alone.

A statement is read by device id in pages of at most :data:`CHUNK` devices: the page's fees
from the fees' key (bill, subscription), its usage from the partial index on (bill,
subscription) that holds billed records only, each read in order and stopped after the page's
devices, however long the account's history.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final

from sqlalchemy import case, func, select, union
from sqlalchemy.orm import Session

from satiot.bss.device_fee_models import BillDeviceFee
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
    "service_days",
    "recurring_charge_yuan",
    "one_time_charge_yuan",
    "uplink_messages",
    "downlink_messages",
    "bytes",
    "billable_bytes",
    "usage_charge_yuan",
    "total_charge_yuan",
)
#: Devices read per statement, at most.
CHUNK: Final = 1_000


@dataclass(frozen=True)
class DeviceUsage:
    """One device's line on a bill (its identities as its subscription holds them). A device
    charged by use alone has no days of service or fees (None, 0)."""

    subscription_id: uuid.UUID
    dev_eui: str
    imei: str | None
    iot_number: str | None
    uplink_messages: int
    downlink_messages: int
    bytes: int
    billable_bytes: int
    charge_micros: int
    first_day: int | None = None
    last_day: int | None = None
    recurring_micros: int = 0
    one_time_micros: int = 0

    @property
    def charge_yuan(self) -> str:
        """The usage charge in yuan, exactly (six decimals)."""
        return micro_yuan_text(self.charge_micros)

    @property
    def service_days(self) -> int | None:
        """Days of the month the fees were charged for (None without fees)."""
        if self.first_day is None or self.last_day is None:
            return None
        return self.last_day - self.first_day + 1

    @property
    def fees_micros(self) -> int:
        return self.recurring_micros + self.one_time_micros

    @property
    def total_micros(self) -> int:
        """Fees and usage: the device's share of the bill before rounding and VAT."""
        return self.fees_micros + self.charge_micros

    @property
    def fees_yuan(self) -> str:
        return micro_yuan_text(self.fees_micros)

    @property
    def total_yuan(self) -> str:
        return micro_yuan_text(self.total_micros)


#: A device's usage on a bill: (uplinks, downlinks, bytes, billable bytes, charge, dev_eui).
_Usage = tuple[int, int, int, int, int, str]
#: A device's fees on a bill: (first day, last day, recurring, one-time).
_Fees = tuple[int, int, int, int]


def device_usage(
    session: Session,
    bill_id: uuid.UUID,
    *,
    after: uuid.UUID | None = None,
    limit: int = CHUNK,
) -> list[DeviceUsage]:
    """The devices on the bill after ``after`` (by subscription id), at most ``limit``.

    Three statements: the next ``limit`` devices' fees and the next ``limit`` devices' usage
    (each in its index's order, so the database stops there), then the identities of the
    first ``limit`` devices of both. Each of those is among the first ``limit`` of either
    list, so both reads hold all it has."""
    if not 1 <= limit <= CHUNK:
        raise ValueError(f"limit must be 1 to {CHUNK}")
    fees = _fees(session, bill_id, after, limit)
    usage = _usage(session, bill_id, after, limit)
    ids = sorted(fees.keys() | usage.keys())[:limit]
    if not ids:
        return []
    sub = Subscription
    identities = {
        s.id: (s.dev_eui, s.imei, s.iot_number)
        for s in session.execute(
            select(sub.id, sub.dev_eui, sub.imei, sub.iot_number).where(sub.id.in_(ids))
        )
    }
    out = []
    for sub_id in ids:
        up, down, size, billable, charge, used_by = usage.get(sub_id, (0, 0, 0, 0, 0, ""))
        dev_eui, imei, number = identities.get(sub_id, (used_by, None, None))
        fee = fees.get(sub_id)
        out.append(
            DeviceUsage(
                sub_id,
                used_by or dev_eui,
                imei,
                number,
                up,
                down,
                size,
                billable,
                charge,
                *(fee if fee is not None else (None, None, 0, 0)),
            )
        )
    return out


def _fees(
    session: Session, bill_id: uuid.UUID, after: uuid.UUID | None, limit: int
) -> dict[uuid.UUID, _Fees]:
    f = BillDeviceFee
    stmt = (
        select(f.subscription_id, f.first_day, f.last_day, f.recurring_micros, f.one_time_micros)
        .where(f.bill_id == bill_id)
        .order_by(f.subscription_id)
        .limit(limit)
    )
    if after is not None:
        stmt = stmt.where(f.subscription_id > after)
    return {
        sub_id: (int(first), int(last), int(recurring), int(once))
        for sub_id, first, last, recurring, once in session.execute(stmt)
    }


def _usage(
    session: Session, bill_id: uuid.UUID, after: uuid.UUID | None, limit: int
) -> dict[uuid.UUID, _Usage]:
    r = UsageRecord
    uplink = func.sum(case((r.kind == "uplink", 1), else_=0))
    stmt = (
        select(
            r.subscription_id,
            uplink,
            func.count() - uplink,
            func.sum(r.bytes),
            func.sum(r.billable_bytes),
            func.sum(r.charge_micros),
            func.max(r.dev_eui),
        )
        .where(r.bill_id == bill_id)
        .group_by(r.subscription_id)
        .order_by(r.subscription_id)
        .limit(limit)
    )
    if after is not None:
        stmt = stmt.where(r.subscription_id > after)
    return {
        sub_id: (int(up), int(down), int(size), int(billable), int(charge), dev_eui)
        for sub_id, up, down, size, billable, charge, dev_eui in session.execute(stmt)
    }


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
    """How many devices the bill's statement lists (read from the two indexes alone)."""
    devices = union(
        select(BillDeviceFee.subscription_id).where(BillDeviceFee.bill_id == bill_id),
        select(UsageRecord.subscription_id).where(UsageRecord.bill_id == bill_id),
    ).subquery()
    return int(session.scalar(select(func.count()).select_from(devices)) or 0)


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
    days = d.service_days
    return (
        number,
        str(d.subscription_id),
        d.dev_eui,
        d.imei or "",
        d.iot_number or "",
        "" if days is None else str(days),
        micro_yuan_text(d.recurring_micros),
        micro_yuan_text(d.one_time_micros),
        str(d.uplink_messages),
        str(d.downlink_messages),
        str(d.bytes),
        str(d.billable_bytes),
        d.charge_yuan,
        d.total_yuan,
    )


def file_name(number: str) -> str:
    """What a download of the statement of bill ``number`` is saved as."""
    return f"satiot-usage-{number}.csv"
