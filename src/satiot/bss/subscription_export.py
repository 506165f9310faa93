"""The subscriptions as a spreadsheet: one line per device with its whole binding.

"One device, one code, one number" is checked by people as much as by code: a customer
reconciles the operator's list against its own asset register, and an operator hands the
binding of terminal, IoT number and handle to an auditor. Both want a file, not pages of a
list, so the export streams every matching subscription as CSV in chunks read by key
(:data:`CHUNK` at a time: one statement a chunk, and one each for offerings and customers it
is the first to name), inside one read transaction, so that the file is one consistent
picture however long the download takes.

The file is UTF-8 with a byte-order mark and CRLF line ends, which Excel opens as such; times
are China's (UTC+8, with the offset written). A cell that begins with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return gets a leading ``'``: customer names and reasons are typed by
people, and a spreadsheet would run such a cell as a formula (CSV injection).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, Final

from sqlalchemy import ColumnElement, Row, select
from sqlalchemy.orm import Session

from satiot.bss.models import Customer, ProductOffering, Subscription
from satiot.core.csv_text import csv_file, safe_cell
from satiot.core.days import business_day, china_time_text
from satiot.core.pagination import walk_rows

COLUMNS: Final = (
    "subscription_id",
    "customer",
    "customer_credit_code",
    "imei",
    "dev_eui",
    "terminal_model",
    "iot_number",
    "handle",
    "offering",
    "status",
    "status_reason",
    "throttled",
    "activated_at",
    "terminated_at",
)
#: Subscriptions read per statement: large enough that the statements cost little per line,
#: small enough that a chunk's rows and text stay a few hundred KiB.
CHUNK: Final = 1_000
#: The columns read: plain rows, not ORM objects, as nothing is changed.
_READ: Final = (
    Subscription.id,
    Subscription.customer_id,
    Subscription.offering_id,
    Subscription.imei,
    Subscription.dev_eui,
    Subscription.terminal_model,
    Subscription.iot_number,
    Subscription.handle,
    Subscription.status,
    Subscription.status_reason,
    Subscription.throttled,
    Subscription.activated_at,
    Subscription.terminated_at,
)


def export_subscriptions(
    session: Session,
    where: Sequence[ColumnElement[bool]] = (),
    *,
    chunk: int = CHUNK,
    progress: Callable[[int], None] | None = None,
) -> Iterator[bytes]:
    """The CSV file, header first, then a piece per chunk of subscriptions (oldest first)
    that the session sees and ``where`` keeps; ``progress`` is told each chunk's count."""
    offerings: dict[uuid.UUID, str] = {}
    customers: dict[uuid.UUID, tuple[str, str]] = {}

    def named() -> Iterator[Sequence[Row[*tuple[Any, ...]]]]:
        for subs in walk_rows(session, select(*_READ).where(*where), Subscription.id, chunk):
            _learn_names(session, subs, offerings, customers)
            yield subs

    return csv_file(COLUMNS, named(), lambda s: _row(s, offerings, customers), progress)


def _learn_names(
    session: Session,
    subs: Sequence[Row[*tuple[Any, ...]]],
    offerings: dict[uuid.UUID, str],
    customers: dict[uuid.UUID, tuple[str, str]],
) -> None:
    """Offering codes and customer names not seen in earlier chunks (a customer's devices
    share a few offerings, so most chunks read none)."""
    new_offerings = {s.offering_id for s in subs} - offerings.keys()
    if new_offerings:
        for o in session.execute(
            select(ProductOffering.id, ProductOffering.code, ProductOffering.version).where(
                ProductOffering.id.in_(new_offerings)
            )
        ):
            offerings[o.id] = f"{o.code} v{o.version}"
    new_customers = {s.customer_id for s in subs} - customers.keys()
    if new_customers:
        for c in session.execute(
            select(Customer.id, Customer.name, Customer.uscc).where(Customer.id.in_(new_customers))
        ):
            customers[c.id] = (c.name, c.uscc)


def _row(
    sub: Row[*tuple[Any, ...]],
    offerings: dict[uuid.UUID, str],
    customers: dict[uuid.UUID, tuple[str, str]],
) -> list[str]:
    name, uscc = customers.get(sub.customer_id, ("", ""))
    return [
        str(sub.id),
        safe_cell(name),
        uscc,
        sub.imei or "",
        sub.dev_eui,
        safe_cell(sub.terminal_model),
        sub.iot_number or "",
        safe_cell(sub.handle),
        safe_cell(offerings.get(sub.offering_id, "")),
        sub.status,
        safe_cell(sub.status_reason),
        "yes" if sub.throttled else "no",
        china_time_text(sub.activated_at),
        china_time_text(sub.terminated_at),
    ]


def file_name(now: datetime) -> str:
    """What a download of the export is saved as: named for China's day."""
    return f"satiot-subscriptions-{business_day(now):%Y%m%d}.csv"
