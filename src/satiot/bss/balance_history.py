"""A prepaid balance's history: each change, newest first, with the balance after it.

A prepaid customer's first question is where its money went. The answer is the account's
ledger (:class:`satiot.bss.models.BalanceEntry`), written with every change of the balance by
the code that makes it: top-ups, usage as rating charges it (one entry per rating batch, so a
busy account's usage arrives in many small entries), a bill paid from the balance when sent
(its recurring and one-time charges and the VAT: its usage was debited as rated), and a credit
note's refund to the balance. Read a page at a time from the (account, id) index.
"""

from __future__ import annotations

import uuid
from typing import Final

from sqlalchemy import Select, select

from satiot.bss.models import BalanceEntry

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
