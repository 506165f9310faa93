"""Billing accounts: who pays for a customer's subscriptions, and how.

A customer may hold several accounts (one per department or project), each ``postpaid``
(billed monthly in arrears) or ``prepaid`` (usage drawn from a balance). Top-ups and charges
change the balance in the billing module; this module opens accounts and finds them
(:func:`get_account` is what billing, orders and rating call).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from satiot.bss.customers import get_customer
from satiot.bss.models import BillingAccount
from satiot.bss.money import format_cny
from satiot.core.auth.principal import Principal
from satiot.core.changes import record_change
from satiot.core.errors import Conflict, InvalidInput, NotFound
from satiot.core.lengths import plain_text

PAYMENT_MODES = ("postpaid", "prepaid")


class AccountNotFound(NotFound):
    slug = "billing-account-not-found"
    title = "Billing account not found"


def account_view(account: BillingAccount) -> dict[str, Any]:
    return {
        "customer_id": str(account.customer_id),
        "name": account.name,
        "payment_mode": account.payment_mode,
        "currency": account.currency,
        "status": account.status,
        "low_balance_micros": account.low_balance_micros,
    }


def open_account(
    session: Session,
    principal: Principal,
    customer_id: uuid.UUID,
    *,
    payment_mode: str,
    at: datetime,
    name: str | None = None,
) -> BillingAccount:
    """Open an account for a customer that is not closed; the name defaults to the
    customer's. A new account starts with a zero balance."""
    if payment_mode not in PAYMENT_MODES:
        raise InvalidInput(
            f"payment_mode: {payment_mode!r} is not one of {', '.join(PAYMENT_MODES)}",
            field="payment_mode",
        )
    customer = get_customer(session, customer_id)
    if customer.status == "closed":
        raise Conflict(f"customer {customer.name} is closed")
    given = (name or "").strip()
    label = plain_text(given, BillingAccount.name, "name") if given else customer.name
    account = BillingAccount(
        tenant_id=customer.tenant_id,
        customer_id=customer.id,
        name=label,
        payment_mode=payment_mode,
        balance_micros=0,
        currency="CNY",
        status="active",
        created_at=at,
    )
    session.add(account)
    session.flush()
    record_change(
        session,
        principal,
        at=at,
        action="billing-account.created",
        target=("billing-account", account.id),
        tenant_id=customer.tenant_id,
        after=account_view(account),
    )
    return account


def running_low() -> ColumnElement[bool]:
    """Prepaid accounts whose balance wants a top-up: at or below zero, or below the account's
    low-balance threshold (the dashboard counts them, the accounts list filters on it)."""
    low = BillingAccount.low_balance_micros
    return and_(
        BillingAccount.payment_mode == "prepaid",
        or_(
            BillingAccount.balance_micros <= 0,
            and_(low.is_not(None), BillingAccount.balance_micros < low),
        ),
    )


def is_running_low(account: BillingAccount) -> bool:
    """:func:`running_low` for an account in hand."""
    low = account.low_balance_micros
    return account.payment_mode == "prepaid" and (
        account.balance_micros <= 0 or (low is not None and account.balance_micros < low)
    )


#: The highest threshold a low-balance notice may have (¥100,000,000).
MAX_LOW_BALANCE_MICROS = 10**14


def set_low_balance(
    session: Session,
    principal: Principal,
    account_id: uuid.UUID,
    threshold_micros: int | None,
    *,
    at: datetime,
    customer_id: uuid.UUID | None = None,
) -> BillingAccount:
    """Announce the prepaid balance once it falls below ``threshold_micros`` (zero: once it
    goes below zero), or never (None). A postpaid account has no balance to watch (409)."""
    account = get_account(session, account_id, customer_id=customer_id)
    if account.payment_mode != "prepaid":
        raise Conflict("a postpaid account has no balance to watch", field="low_balance")
    if threshold_micros is not None and not 0 <= threshold_micros <= MAX_LOW_BALANCE_MICROS:
        raise InvalidInput(
            f"low_balance: between ¥0 and {format_cny(MAX_LOW_BALANCE_MICROS)}",
            field="low_balance",
        )
    before = account_view(account)
    account.low_balance_micros = threshold_micros
    session.flush()
    record_change(
        session,
        principal,
        at=at,
        action="billing-account.low-balance-set",
        target=("billing-account", account.id),
        tenant_id=account.tenant_id,
        before=before,
        after=account_view(account),
    )
    return account


def get_account(
    session: Session, account_id: uuid.UUID, *, customer_id: uuid.UUID | None = None
) -> BillingAccount:
    """The account, if the session may see it (and it belongs to ``customer_id`` if given);
    :class:`AccountNotFound` otherwise."""
    account = session.get(BillingAccount, account_id)
    if account is None or (customer_id is not None and account.customer_id != customer_id):
        raise AccountNotFound(f"billing account {account_id} not found")
    return account


def accounts_of(session: Session, customer_id: uuid.UUID) -> list[BillingAccount]:
    """The customer's accounts, oldest first."""
    stmt = (
        select(BillingAccount)
        .where(BillingAccount.customer_id == customer_id)
        .order_by(BillingAccount.id)
    )
    return list(session.scalars(stmt))


def balance_text(account: BillingAccount) -> str:
    """The balance for people, e.g. ``¥1,234.56`` (a negative balance is money owed)."""
    if account.balance_micros < 0:
        return "-" + format_cny(-account.balance_micros)
    return format_cny(account.balance_micros)
