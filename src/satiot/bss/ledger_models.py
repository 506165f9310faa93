"""The prepaid balance's ledger: one row per change of a balance, with the balance after it.

Apart from :mod:`satiot.bss.models` because it is its own capability: written by the code that
changes a balance (``payments.top_up``, ``rating_store.debit_prepaid``) and read by
:mod:`satiot.bss.balance_history`.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from satiot.bss.models import Micros
from satiot.core.auth.tenancy import TenantScoped
from satiot.core.db import Base, UTCDateTime
from satiot.core.ids import new_id


class BalanceEntry(TenantScoped, Base):
    """One change of a prepaid balance, with the balance after it: the account's ledger.

    Written by the only code that changes a balance (``payments.top_up`` and
    ``rating_store.debit_prepaid``), in the same transaction: a top-up (``top-up``, its
    reference), usage rated (``usage``: a day's rating batches add up in one entry until
    something else changes the balance),
    a bill paid from the balance when sent (``bill``: what its usage had not debited already;
    the bill's number), a credit note's refund to the balance (``credit``: its number), and
    what a balance held when the ledger began (``opening``). The entries of an account add up
    to its balance; their ids follow the order the balance changed in.
    """

    __tablename__ = "balance_entries"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    billing_account_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("billing_accounts.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(16))
    amount_micros: Mapped[int] = mapped_column(Micros)
    balance_micros: Mapped[int] = mapped_column(Micros)
    reference: Mapped[str | None] = mapped_column(String(100))

    # An account's ledger, newest first, a page at a time, from the index alone.
    __table_args__ = (Index("ix_balance_entries_account_id", "billing_account_id", "id"),)
