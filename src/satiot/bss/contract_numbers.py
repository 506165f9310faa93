"""Contract numbers: the series ``SC-<year>-<6 digits>``, gap-free, the year in China time.

The counter is a row of the shared sequence table (``invoice_sequences``, series
``SC-<year>``), incremented by an ``UPDATE … RETURNING`` inside the drafting transaction. The
update holds the row's lock until commit (PostgreSQL; SQLite's single writer does the same), so
concurrent drafts queue instead of reading the same value, and a draft that rolls back gives
its number back: no gaps, no repeats. ``max(number) + 1`` under a lock was the alternative,
but on PostgreSQL only a lock on the whole contracts table would make it safe; one row lock is
narrower and held for the same time. The first number of a year inserts the row with
``ON CONFLICT DO NOTHING``, so two first drafts of a year racing both end up on the one row.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from satiot.bss.models import InvoiceSequence
from satiot.core.days import business_day


def take_number(session: Session, at: datetime) -> str:
    """The next contract number of this year's series (take it inside the drafting transaction)."""
    year = business_day(at).year
    series = f"SC-{year}"
    bump = (
        update(InvoiceSequence)
        .where(InvoiceSequence.series == series)
        .values(next_value=InvoiceSequence.next_value + 1)
        .returning(InvoiceSequence.next_value)
        .execution_options(synchronize_session=False)
    )
    after = session.execute(bump).scalar_one_or_none()
    if after is None:
        insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        session.execute(
            insert(InvoiceSequence)
            .values(series=series, next_value=1)
            .on_conflict_do_nothing(index_elements=["series"])
        )
        after = session.execute(bump).scalar_one()
    return f"{series}-{after - 1:06d}"
