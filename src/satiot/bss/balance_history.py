"""A prepaid balance's history: each change, newest first, with the balance after it.

A prepaid customer's first question is where its money went. The answer is the account's
ledger (:class:`satiot.bss.ledger_models.BalanceEntry`), written with every change of the balance by
the code that makes it: top-ups, usage as rating charges it (a rating batch adds to the day's
usage line while nothing else has changed the balance since, so a busy account has about one
usage line a day), a bill paid from the balance when sent
(its recurring and one-time charges and the VAT: its usage was debited as rated), and a credit
note's refund to the balance. Read a page at a time from the (account, id) index, or written
out whole as a CSV file, oldest first.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Final

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from satiot.bss.ledger_models import BalanceEntry
from satiot.bss.money import to_yuan
from satiot.bss.periods import zone
from satiot.core.csv_text import csv_file, safe_cell

#: The kinds of entry, and how people read them.
KINDS: Final = {
    "opening": "balance when the ledger began",
    "top-up": "top-up",
    "usage": "usage rated",
    "bill": "bill paid from the balance",
    "credit": "credit note refunded to the balance",
}


def entries_of(account_id: uuid.UUID) -> Select[BalanceEntry]:
    """The account's entries (page them newest first by id: the order they were written)."""
    return select(BalanceEntry).where(BalanceEntry.billing_account_id == account_id)


#: The columns of the ledger as a file.
COLUMNS: Final = ("at", "kind", "description", "reference", "amount", "balance")
#: Entries read per query when the ledger is written out (a busy account has thousands a day).
CHUNK: Final = 5_000


def _yuan(micros: int) -> str:
    """Yuan with two decimals, or all six where a charge has parts of a fen."""
    return f"{to_yuan(micros):.2f}" if micros % 10_000 == 0 else f"{to_yuan(micros):f}"


def file_name(account_id: uuid.UUID) -> str:
    return f"satiot-balance-{account_id.hex[:8]}.csv"


def export_entries(session: Session, account_id: uuid.UUID, tz: str) -> Iterator[bytes]:
    """The whole ledger as CSV, oldest first (a spreadsheet adds it up from the top), read a
    chunk at a time along the (account, id) index; times in the business time zone, amounts
    in yuan (to the fen, or to the micro-yuan where a charge has parts of a fen)."""
    local = zone(tz)

    def chunks() -> Iterator[list[BalanceEntry]]:
        after: uuid.UUID | None = None
        while True:
            stmt = entries_of(account_id).order_by(BalanceEntry.id).limit(CHUNK)
            if after is not None:
                stmt = stmt.where(BalanceEntry.id > after)
            found = list(session.scalars(stmt))
            if found:
                yield found
                after = found[-1].id
            if len(found) < CHUNK:
                return

    def row(e: BalanceEntry) -> list[str]:
        return [
            e.at.astimezone(local).strftime("%Y-%m-%d %H:%M:%S"),
            e.kind,
            KINDS.get(e.kind, e.kind),
            safe_cell(e.reference or ""),
            _yuan(e.amount_micros),
            _yuan(e.balance_micros),
        ]

    yield from csv_file(COLUMNS, chunks(), row)
