"""A month's usage records as a file (详单): one line per message, as rating recorded it.

A bill sums a month's usage by offering and direction, and its usage statement by device; a
customer who doubts a charge wants the messages themselves, to hold against its own devices'
logs: when each was sent or received, its size and billable size, what it cost, and whether
it was charged, billed (on which bill) or not charged and why. This is that list for one
billing account or one subscription and one business month.

The file is one statement streamed in chunks, in id order: a record's id is its event's, and
event ids are time-ordered, so that is the order the messages were logged. A month of a large
account holds millions of records: they are read from the account's (account, period, id)
index in that order, or sorted once where the database prefers to read the month whole, never
by a keyset query per chunk that would sort what is left of the month again each time. A
device's month is small enough to sort.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import ColumnElement, String, cast, func, select
from sqlalchemy.orm import Session

from satiot.bss.models import BillingAccount, CustomerBill, Subscription, UsageRecord
from satiot.bss.money import micro_yuan_text
from satiot.bss.periods import check_period, zone
from satiot.core.csv_text import csv_file
from satiot.core.errors import InvalidInput, NotFound
from satiot.core.ids import id_text

COLUMNS: Final = (
    "used_at",
    "dev_eui",
    "direction",
    "bytes",
    "billable_bytes",
    "charge_yuan",
    "state",
    "reason",
    "bill_number",
    "period",
    "subscription_id",
    "event_id",
)
#: Records fetched from the database at a time while the file is written.
CHUNK: Final = 5_000
STATES: Final = ("rated", "billed", "rejected")


def _as_text(column: Any) -> Any:
    """An id read as text (``core.ids.id_text``): a ``uuid.UUID`` made for each of a million
    rows, only to be written out again, cost a third of the file's time."""
    return cast(column, String).label(column.key)


#: What the file reads of a record; the event's id is the record's (``UsageRecord.event_id``).
_READ = (
    UsageRecord.occurred_at,
    UsageRecord.dev_eui,
    UsageRecord.kind,
    UsageRecord.bytes,
    UsageRecord.billable_bytes,
    UsageRecord.charge_micros,
    UsageRecord.state,
    UsageRecord.reason,
    _as_text(UsageRecord.bill_id),
    UsageRecord.period,
    _as_text(UsageRecord.subscription_id),
    _as_text(UsageRecord.event_id),
)


@dataclass(frozen=True)
class Selection:
    """Whose records of which month, and optionally only those in one state."""

    period: str
    billing_account_id: uuid.UUID | None = None
    subscription_id: uuid.UUID | None = None
    state: str | None = None

    def where(self) -> list[ColumnElement[bool]]:
        out = [UsageRecord.period == self.period]
        if self.billing_account_id is not None:
            out.append(UsageRecord.billing_account_id == self.billing_account_id)
        if self.subscription_id is not None:
            out.append(UsageRecord.subscription_id == self.subscription_id)
        if self.state is not None:
            out.append(UsageRecord.state == self.state)
        return out


def selection(
    session: Session,
    period: str,
    *,
    billing_account_id: uuid.UUID | None = None,
    subscription_id: uuid.UUID | None = None,
    state: str | None = None,
) -> Selection:
    """A checked selection: a well-formed month, a known state, and an account or a
    subscription the session sees (another tenant's is not found). One of the two is needed:
    a month of every account is the whole table, which no one reconciles line by line."""
    check_period(period)
    if state is not None and state not in STATES:
        raise InvalidInput(f"state must be one of {', '.join(STATES)}", field="state")
    if billing_account_id is None and subscription_id is None:
        raise InvalidInput(
            "name the billing account or the subscription whose usage to export",
            field="billing_account_id",
        )
    if billing_account_id is not None and session.get(BillingAccount, billing_account_id) is None:
        raise NotFound(f"no billing account {billing_account_id}")
    if subscription_id is not None and session.get(Subscription, subscription_id) is None:
        raise NotFound(f"no subscription {subscription_id}")
    return Selection(period, billing_account_id, subscription_id, state)


def count_records(session: Session, chosen: Selection) -> int:
    """How many lines the file will hold (for a progress bar)."""
    found = session.scalar(select(func.count()).select_from(UsageRecord).where(*chosen.where()))
    return int(found or 0)


def export_records(
    session: Session,
    chosen: Selection,
    tz: str,
    *,
    chunk: int = CHUNK,
    progress: Callable[[int], None] | None = None,
) -> Iterator[bytes]:
    """The file (UTF-8 with a byte-order mark, CRLF), header first, then a piece per chunk of
    records in the order they were logged; times in the business time zone, charges in yuan to
    the micro-yuan (a message's charge often has parts of a fen); ``progress`` is told each
    chunk's count."""
    local = zone(tz)
    bills: dict[str, str] = {}

    def chunks() -> Iterator[Sequence[Sequence[Any]]]:
        stmt = select(*_READ).where(*chosen.where()).order_by(UsageRecord.id)
        result = session.execute(stmt, execution_options={"yield_per": chunk})
        for rows in result.partitions():
            unseen = {r.bill_id for r in rows if r.bill_id is not None} - bills.keys()
            if unseen:
                wanted = {id_text(b): b for b in unseen}
                numbers = select(CustomerBill.id, CustomerBill.number).where(
                    CustomerBill.id.in_([uuid.UUID(b) for b in wanted])
                )
                for bill_id, number in session.execute(numbers):
                    bills[wanted[str(bill_id)]] = number
            yield rows

    def line(r: Sequence[Any]) -> list[str]:
        (at, dev_eui, kind, size, billable, charge, state, reason, bill_id, period, sub_id,
         event_id) = r  # fmt: skip
        return [
            at.astimezone(local).strftime("%Y-%m-%d %H:%M:%S"),
            dev_eui,
            kind,
            str(size),
            str(billable),
            micro_yuan_text(charge),
            state,
            reason or "",
            bills.get(bill_id, "") if bill_id is not None else "",
            period,
            id_text(sub_id) if sub_id else "",
            id_text(event_id),
        ]

    return csv_file(COLUMNS, chunks(), line, progress)


def file_name(chosen: Selection) -> str:
    """What a download is saved as: the month and whose records."""
    whose = chosen.billing_account_id or chosen.subscription_id
    kind = "account" if chosen.billing_account_id is not None else "subscription"
    assert whose is not None
    return f"satiot-usage-{chosen.period}-{kind}-{whose.hex[:8]}.csv"
