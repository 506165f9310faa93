"""A month's usage records as a file (详单): one line per message, as rating recorded it.

A bill sums a month's usage by offering and direction, and its usage statement by device; a
customer who doubts a charge wants the messages themselves, to hold against its own devices'
logs: when each was sent or received, its size and billable size, what it cost, and whether
it was charged, billed (on which bill) or not charged and why. This is that list for one
business month of one billing account, one subscription, or a whole customer: every account
of it, one after the other, then its messages that no account was charged for (a device
without a live subscription).

Each part of the file (an account's or a device's month; a customer's accounts in turn, then
its records without one) is one statement streamed in chunks, in id order: a record's id is
its event's, and event ids are time-ordered, so that is the order the messages were logged. A
month of a large account holds millions of records: they are read from the account's
(account, period, id) index in that order, or sorted once where the database prefers to read
the month whole, never by a keyset query per chunk that would sort what is left of the month
again each time. A device's month is small enough to sort; a customer's records without an
account have their own small index (``ix_usage_without_account``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import ColumnElement, Row, String, cast, func, select
from sqlalchemy.orm import Session

from satiot.bss.models import (
    BillingAccount,
    Customer,
    CustomerBill,
    Subscription,
    UsageRecord,
)
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
    "billing_account_id",
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
    _as_text(UsageRecord.billing_account_id),
)


@dataclass(frozen=True)
class Selection:
    """Whose records of which month, and optionally only those in one state. A customer's
    are its accounts' (``accounts``, in id order) and its tenant's records without one."""

    period: str
    billing_account_id: uuid.UUID | None = None
    subscription_id: uuid.UUID | None = None
    state: str | None = None
    customer_id: uuid.UUID | None = None
    tenant_id: uuid.UUID | None = None
    accounts: tuple[uuid.UUID, ...] = ()

    def parts(self) -> list[list[ColumnElement[bool]]]:
        """The file's parts, in order, each a filter that an index reads in id order: the
        account's month, the device's, or a customer's accounts' months one by one and then
        its month's records that name no account."""
        common = [UsageRecord.period == self.period]
        if self.state is not None:
            common.append(UsageRecord.state == self.state)
        if self.customer_id is not None:
            own = [[UsageRecord.billing_account_id == a, *common] for a in self.accounts]
            orphans = [
                UsageRecord.billing_account_id.is_(None),
                UsageRecord.tenant_id == self.tenant_id,
                *common,
            ]
            return [*own, orphans]
        if self.billing_account_id is not None:
            common.append(UsageRecord.billing_account_id == self.billing_account_id)
        if self.subscription_id is not None:
            common.append(UsageRecord.subscription_id == self.subscription_id)
        return [common]


def selection(
    session: Session,
    period: str,
    *,
    billing_account_id: uuid.UUID | None = None,
    subscription_id: uuid.UUID | None = None,
    state: str | None = None,
    customer_id: uuid.UUID | None = None,
) -> Selection:
    """A checked selection: a well-formed month, a known state, and an account, a
    subscription or a customer the session sees (another tenant's is not found). One is
    needed: a month of every customer is the whole table, which no one reconciles line by
    line; a customer goes alone (its file holds all its accounts and devices)."""
    check_period(period)
    if state is not None and state not in STATES:
        raise InvalidInput(f"state must be one of {', '.join(STATES)}", field="state")
    if customer_id is not None:
        if billing_account_id is not None or subscription_id is not None:
            raise InvalidInput(
                "a customer's file holds all its accounts and devices: name the customer "
                "alone, or an account or a subscription instead",
                field="customer_id",
            )
        customer = session.get(Customer, customer_id)
        if customer is None:
            raise NotFound(f"no customer {customer_id}")
        accounts = session.scalars(
            select(BillingAccount.id)
            .where(BillingAccount.customer_id == customer_id)
            .order_by(BillingAccount.id)
        ).all()
        return Selection(
            period,
            state=state,
            customer_id=customer_id,
            tenant_id=customer.tenant_id,
            accounts=tuple(accounts),
        )
    if billing_account_id is None and subscription_id is None:
        raise InvalidInput(
            "name the billing account, the subscription or the customer whose usage to export",
            field="billing_account_id",
        )
    if billing_account_id is not None and session.get(BillingAccount, billing_account_id) is None:
        raise NotFound(f"no billing account {billing_account_id}")
    if subscription_id is not None and session.get(Subscription, subscription_id) is None:
        raise NotFound(f"no subscription {subscription_id}")
    return Selection(period, billing_account_id, subscription_id, state)


def count_records(session: Session, chosen: Selection) -> int:
    """How many lines the file will hold (for a progress bar)."""
    return sum(
        int(session.scalar(select(func.count()).select_from(UsageRecord).where(*part)) or 0)
        for part in chosen.parts()
    )


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

    def parts() -> Iterator[Sequence[Row[Any]]]:
        for part in chosen.parts():  # one after the other: each its own index's order
            stmt = select(*_READ).where(*part).order_by(UsageRecord.id)
            yield from session.execute(stmt, execution_options={"yield_per": chunk}).partitions()

    def chunks() -> Iterator[Sequence[Sequence[Any]]]:
        for rows in parts():
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
         event_id, account_id) = r  # fmt: skip
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
            id_text(account_id) if account_id else "",
        ]

    return csv_file(COLUMNS, chunks(), line, progress)


def file_name(chosen: Selection) -> str:
    """What a download is saved as: the month and whose records."""
    named = (
        ("customer", chosen.customer_id),
        ("account", chosen.billing_account_id),
        ("subscription", chosen.subscription_id),
    )
    kind, whose = next((k, w) for k, w in named if w is not None)
    return f"satiot-usage-{chosen.period}-{kind}-{whose.hex[:8]}.csv"
