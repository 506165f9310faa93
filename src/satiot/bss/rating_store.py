"""What rating writes besides its set-based statements: prepaid debits (with their ledger
entries) and suspensions.

Both are per account or per subscription and few per batch; suspensions go through the
subscription module so that the device, number and handle follow and the change is audited
and announced like any other.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Final

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from satiot.bss.ledger_models import BalanceEntry
from satiot.bss.models import BillingAccount, Contract, Subscription
from satiot.bss.money import fen_text
from satiot.bss.periods import local_date
from satiot.core import events
from satiot.core.auth.principal import system_principal
from satiot.core.bootstrap import operator_tenant
from satiot.core.ids import new_id

#: Subscription states that no longer carry traffic (their identities are released).
ENDED: Final = ("terminated", "cancelled", "aborted")


def debit_prepaid(
    session: Session,
    debits: dict[uuid.UUID, int],
    at: datetime,
    *,
    kind: str = "usage",
    reference: str | None = None,
    tz: str | None = None,
) -> list[uuid.UUID]:
    """Debit prepaid balances (a negative debit credits), each change written to the
    account's ledger as ``kind`` (``usage``, ``bill``, ``credit``: :class:`BalanceEntry`);
    announce a balance that falls below its account's threshold (:data:`BALANCE_LOW`);
    suspend what the contract stops at zero. Return suspended ids.

    With ``tz`` (rating's business time zone), usage joins the account's latest entry when that
    is usage of the same day: a busy account's ledger then holds a line of usage per day between
    its other changes, instead of one per rating batch, and every entry's balance is still the
    running sum of the entries up to it."""
    exhausted: list[uuid.UUID] = []
    entries = []
    for account_id in sorted(debits):
        if not debits[account_id]:
            continue
        tenant_id, balance, low = session.execute(
            update(BillingAccount)
            .where(BillingAccount.id == account_id)
            .values(balance_micros=BillingAccount.balance_micros - debits[account_id])
            .returning(
                BillingAccount.tenant_id,
                BillingAccount.balance_micros,
                BillingAccount.low_balance_micros,
            )
            .execution_options(synchronize_session=False)
        ).one()
        if low is not None and balance < low <= balance + debits[account_id]:
            _announce_low(session, account_id, tenant_id, balance, low, kind, at)
        joined = (
            kind == "usage"
            and tz is not None
            and _join_days_usage(session, account_id, -debits[account_id], balance, at, tz)
        )
        if not joined:
            entries.append(
                {
                    "id": new_id(),
                    "tenant_id": tenant_id,
                    "billing_account_id": account_id,
                    "at": at,
                    "kind": kind,
                    "amount_micros": -debits[account_id],
                    "balance_micros": balance,
                    "reference": reference,
                }
            )
        if balance <= 0:
            exhausted.append(account_id)
    if entries:
        session.execute(insert(BalanceEntry), entries)
    if not exhausted:
        return []
    stopping = select(Contract.id).where(Contract.stop_at_zero_balance.is_(True))
    ids = list(
        session.scalars(
            select(Subscription.id).where(
                Subscription.billing_account_id.in_(exhausted),
                Subscription.status == "active",
                Subscription.contract_id.in_(stopping),
            )
        )
    )
    return suspend(session, ids, "prepaid balance exhausted", at, origin="balance") if ids else []


def _join_days_usage(
    session: Session, account_id: uuid.UUID, amount: int, balance: int, at: datetime, tz: str
) -> bool:
    """Add ``amount`` to the account's latest ledger entry if that is usage of the same
    business day as ``at`` (then the balance after it is ``balance``); whether it did."""
    latest = session.execute(
        select(BalanceEntry.id, BalanceEntry.kind, BalanceEntry.at)
        .where(BalanceEntry.billing_account_id == account_id)
        .order_by(BalanceEntry.id.desc())
        .limit(1)
    ).first()
    if latest is None or latest.kind != "usage":
        return False
    if local_date(latest.at, tz) != local_date(at, tz):
        return False
    session.execute(
        update(BalanceEntry)
        .where(BalanceEntry.id == latest.id)
        .values(
            amount_micros=BalanceEntry.amount_micros + amount,
            balance_micros=balance,
            at=max(at, latest.at),
        )
        .execution_options(synchronize_session=False)
    )
    return True


#: The notice a prepaid balance gets when it falls below the account's threshold.
BALANCE_LOW: Final = "billing-account.balance-low"


def _announce_low(
    session: Session,
    account_id: uuid.UUID,
    tenant_id: uuid.UUID,
    balance: int,
    low: int,
    kind: str,
    at: datetime,
) -> None:
    """Tell the customer its balance fell below its threshold (once per fall: a top-up above
    the threshold arms the notice again)."""
    events.emit(
        session,
        BALANCE_LOW,
        at=at,
        payload={
            "type": BALANCE_LOW,
            "billing_account_id": str(account_id),
            "balance_micros": balance,
            "balance": fen_text(balance),
            "threshold_micros": low,
            "threshold": fen_text(low),
            "cause": kind,
        },
        tenant_id=tenant_id,
        subject=("billing-account", str(account_id)),
    )


def suspend(
    session: Session, ids: Sequence[uuid.UUID], reason: str, at: datetime, *, origin: str
) -> list[uuid.UUID]:
    """Suspend the active ones of ``ids`` as the subscription module does for anyone (device,
    number and handle too; audited and announced, in this transaction); return them."""
    from satiot.bss.subscriptions import suspend_subscription

    active = list(
        session.scalars(
            select(Subscription.id)
            .where(Subscription.id.in_(ids), Subscription.status == "active")
            .order_by(Subscription.id)
        )
    )
    if not active:
        return []
    operator = operator_tenant(session)
    principal = system_principal(operator.id if operator else uuid.UUID(int=0), "rating")
    for sub_id in active:
        suspend_subscription(session, principal, sub_id, reason, at, origin=origin)
    session.flush()
    return active
