"""The Usage page: each device's monthly counters, allowances, quotas and pools, with the
50/80/100 % thresholds already announced, for one business month; and what was not charged,
by reason and tenant, so that traffic nobody pays for is seen and explained.

Customers see their own devices (the read session is tenant-scoped); operator staff see all.
The month's totals and rejections come from one grouped scan of its usage records.

``/usage/records.csv`` is the file of a month's records of one billing account or device, a
line per message (:mod:`satiot.bss.usage_export`), offered on the account's and the device's
pages.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.responses import Response

from satiot.api.csv_files import streamed_download
from satiot.bss import usage_export
from satiot.bss.models import (
    BillingAccount,
    Contract,
    Customer,
    ProductOffering,
    Subscription,
    UsageCounter,
    UsageRecord,
)
from satiot.bss.periods import check_period, period_of
from satiot.bss.rating_rules import REJECTION_REASONS, share
from satiot.core.errors import DomainError, NotFound
from satiot.core.models import Tenant
from satiot.core.pagination import paginate
from satiot.web.flash import Flash
from satiot.web.rendering import page
from satiot.web.session import SignedIn
from satiot.web.views.network_rows import parse_uuid

router = APIRouter()
PATH = "/usage"
PAGE = 100


@dataclass(frozen=True)
class Pool:
    """Whose pool a counter is, by name: its id alone tells an operator nothing."""

    account_id: str
    account: str
    offering: str


@dataclass(frozen=True)
class Row:
    counter: UsageCounter
    label: str  # DevEUI, or "pool"
    allowance_pct: int | None
    quota_pct: int | None
    quota: tuple[int, int] | None
    pool: Pool | None = None


def _pool_names(session: Session, buckets: list[str]) -> dict[str, Pool]:
    """``pool:<account>:<offering>`` -> the account's and the offering's names (two queries
    for a page, whatever its pools)."""
    ids = {b: b.split(":")[1:] for b in buckets if b.startswith("pool:")}
    accounts = {
        str(a.id): a.name
        for a in session.scalars(
            select(BillingAccount).where(
                BillingAccount.id.in_({uuid.UUID(a) for a, _ in ids.values()})
            )
        )
    }
    offerings = {
        str(o.id): f"{o.name} (v{o.version})"
        for o in session.scalars(
            select(ProductOffering).where(
                ProductOffering.id.in_({uuid.UUID(o) for _, o in ids.values()})
            )
        )
    }
    return {
        bucket: Pool(account_id, accounts[account_id], offerings[offering_id])
        for bucket, (account_id, offering_id) in ids.items()
    }


@dataclass(frozen=True)
class Rejection:
    """Uses of one tenant not charged for one reason in the month."""

    reason: str
    meaning: str
    tenant: str
    messages: int


@router.get(PATH)
def usage_page(
    request: Request, signed_in: SignedIn, period: str = "", after: str | None = None
) -> Response:
    signed_in.require_any("usage:read")
    tz = signed_in.ctx.settings.business_timezone
    flash = None
    period = period.strip()
    try:  # str.isdigit() also took Arabic-Indic digits, month 13 and the year 0
        check_period(period)
    except DomainError as exc:
        if period:
            flash = Flash("error", exc.detail)
        period = period_of(signed_in.now(), tz)
    with signed_in.call.read() as session:
        stmt = select(UsageCounter).where(UsageCounter.period == period)
        try:
            found = paginate(session, stmt, UsageCounter.id, cursor=after, limit=PAGE)
        except DomainError as exc:
            found = paginate(session, stmt, UsageCounter.id, cursor=None, limit=PAGE)
            flash = Flash("error", exc.detail)
        sub_ids = [uuid.UUID(c.bucket[4:]) for c in found.items if c.bucket.startswith("sub:")]
        subs = {
            str(s.id): s
            for s in session.scalars(select(Subscription).where(Subscription.id.in_(sub_ids)))
        }
        pools = _pool_names(session, [c.bucket for c in found.items])
        quotas = {
            k.id: (k.monthly_messages_per_device or 0, k.monthly_bytes_per_device or 0)
            for k in session.scalars(
                select(Contract).where(Contract.id.in_({s.contract_id for s in subs.values()}))
            )
        }
        grouped = session.execute(
            select(
                UsageRecord.state,
                UsageRecord.reason,
                UsageRecord.tenant_id,
                func.count(),
                func.coalesce(func.sum(UsageRecord.charge_micros), 0),
            )
            .where(UsageRecord.period == period)
            .group_by(UsageRecord.state, UsageRecord.reason, UsageRecord.tenant_id)
        ).all()
        totals: dict[str, tuple[int, int]] = {}
        for state, _reason, _tenant, n, micros in grouped:
            before = totals.get(state, (0, 0))
            totals[state] = (before[0] + int(n), before[1] + int(micros))
        refused = [g for g in grouped if g[0] == "rejected"]
        # a customer's own month as one file (staff find it on each customer's page)
        own_customer = None
        if not signed_in.principal.all_tenants:
            own_customer = session.scalar(select(Customer.id).order_by(Customer.id).limit(1))
        names = {
            t.id: t.name
            for t in session.scalars(select(Tenant).where(Tenant.id.in_({g[2] for g in refused})))
        }
    rejections = sorted(
        (
            Rejection(
                reason or "unknown",
                REJECTION_REASONS.get(reason or "", ""),
                names.get(tenant_id, str(tenant_id)),
                int(n),
            )
            for _state, reason, tenant_id, n, _micros in refused
        ),
        key=lambda r: (-r.messages, r.reason, r.tenant),
    )
    rows = []
    for c in found.items:
        own = (c.allowance_messages, c.allowance_bytes)
        allowance = share(c.messages, c.bytes, *own) if any(own) else None
        sub = subs.get(c.bucket[4:]) if c.bucket.startswith("sub:") else None
        quota = quotas.get(sub.contract_id) if sub is not None else None
        quota = quota if quota and any(quota) else None
        rows.append(
            Row(
                c,
                sub.dev_eui if sub is not None else "pool",
                allowance,
                share(c.messages, c.bytes, *quota) if quota else None,
                quota,
                pools.get(c.bucket),
            )
        )
    next_url = None
    if found.next_cursor:
        next_url = f"{PATH}?{urlencode({'period': period, 'after': found.next_cursor})}"
    return page(
        request,
        signed_in,
        "usage.html",
        {
            "title": "Usage",
            "period": period,
            "rows": rows,
            "totals": totals,
            "rejections": rejections,
            "next_url": next_url,
            "own_file": None
            if own_customer is None
            else f"{PATH}/records.csv?{urlencode({'customer': own_customer, 'period': period})}",
        },
        flash=flash,
    )


@router.get(PATH + "/records.csv")
def usage_records_csv(
    signed_in: SignedIn,
    period: str = "",
    account: str = "",
    subscription: str = "",
    customer: str = "",
    state: str = "",
) -> Response:
    """A month's usage records of one account, device or customer as a file (as
    ``/api/v1/usage/csv``); the current month when none is named."""
    signed_in.require_any("usage:read")
    tz = signed_in.ctx.settings.business_timezone
    ids = {
        "account": account.strip(),
        "subscription": subscription.strip(),
        "customer": customer.strip(),
    }
    parsed = {name: parse_uuid(value) if value else None for name, value in ids.items()}
    unknown = [name for name, value in ids.items() if value and parsed[name] is None]
    if unknown:
        missing = f"no {unknown[0]} {ids[unknown[0]]}"
        return Response(missing, status_code=404, media_type="text/plain")
    try:
        with signed_in.call.read() as session:
            chosen = usage_export.selection(
                session,
                period.strip() or period_of(signed_in.now(), tz),
                billing_account_id=parsed["account"],
                subscription_id=parsed["subscription"],
                customer_id=parsed["customer"],
                state=state.strip() or None,
            )
    except NotFound as exc:
        return Response(exc.detail, status_code=404, media_type="text/plain")
    except DomainError as exc:
        return Response(exc.detail, status_code=422, media_type="text/plain")
    return streamed_download(
        signed_in.call.read,
        lambda session: usage_export.export_records(session, chosen, tz),
        usage_export.file_name(chosen),
    )
