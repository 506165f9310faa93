"""What a rating batch reads and writes: a fixed number of statements per batch.

Reads: the batch's already-rated event ids, the live subscriptions of its devices, their
contracts and accounts, tariffs (cached), pool sizes, and its counters (created if missing,
then locked ``FOR UPDATE`` on PostgreSQL so competing workers serialise per bucket; SQLite
writers are serialised already). Writes: usage records in bulk (:mod:`satiot.core.bulk`),
counters by primary key, prepaid debits, suspensions.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import Table, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from satiot.bss.models import (
    BillingAccount,
    Contract,
    Subscription,
    UsageCounter,
    UsageRecord,
)
from satiot.bss.periods import period_bounds
from satiot.bss.rating_rules import Bucket, Tariff, TariffCache
from satiot.core.auth.principal import system_principal
from satiot.core.bootstrap import operator_tenant
from satiot.core.bulk import insert_rows, update_rows
from satiot.core.ids import new_id

if TYPE_CHECKING:
    from satiot.bss.rating import Usage

#: Subscription states that no longer carry traffic (their identities are released).
ENDED: Final = ("terminated", "cancelled", "aborted")

USAGE_COLUMNS: Final = (
    "id",
    "event_id",
    "tenant_id",
    "dev_eui",
    "subscription_id",
    "billing_account_id",
    "offering_id",
    "kind",
    "bytes",
    "billable_bytes",
    "period",
    "occurred_at",
    "charge_micros",
    "state",
    "reason",
)


@dataclass(frozen=True)
class Sub:
    id: uuid.UUID
    tenant_id: uuid.UUID
    dev_eui: str
    billing_account_id: uuid.UUID
    contract_id: uuid.UUID
    offering_id: uuid.UUID
    add_on_ids: tuple[str, ...]
    status: str
    throttled: bool
    activated_at: datetime | None


@dataclass(frozen=True)
class Terms:
    """What a contract says that rating needs."""

    quota_messages: int
    quota_bytes: int
    quota_action: str
    stop_at_zero_balance: bool


@dataclass(frozen=True)
class Account:
    prepaid: bool


@dataclass
class Context:
    """Everything one batch needs, loaded up front."""

    session: Session
    tariffs: TariffCache
    subs: dict[str, Sub]
    contracts: dict[uuid.UUID, Terms]
    accounts: dict[uuid.UUID, Account]
    buckets: dict[tuple[str, str], Bucket] = field(default_factory=dict)
    bucket_keys: dict[uuid.UUID, str] = field(default_factory=dict)

    _by_sub: dict[uuid.UUID, Tariff] = field(default_factory=dict)

    def tariff(self, sub: Sub) -> Tariff:
        found = self._by_sub.get(sub.id)
        if found is None:
            found = self._by_sub[sub.id] = self.tariffs.tariff(sub.offering_id, sub.add_on_ids)
        return found


def pool_key(sub: Sub) -> str:
    return f"pool:{sub.billing_account_id}:{sub.offering_id}"


def already_rated(session: Session, event_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """Events of this batch that have a usage record already (e.g. after a forgetful rewind)."""
    return set(
        session.scalars(select(UsageRecord.event_id).where(UsageRecord.event_id.in_(event_ids)))
    )


def load_context(session: Session, tariffs: TariffCache, usages: Sequence[Usage]) -> Context:
    dev_euis = {u.dev_eui for u in usages}
    subs: dict[str, Sub] = {}
    t = Subscription.__table__
    assert isinstance(t, Table)
    for row in session.connection().execute(
        select(
            t.c.id,
            t.c.tenant_id,
            t.c.dev_eui,
            t.c.billing_account_id,
            t.c.contract_id,
            t.c.offering_id,
            t.c.add_on_ids,
            t.c.status,
            t.c.throttled,
            t.c.activated_at,
        ).where(t.c.dev_eui.in_(dev_euis), t.c.status.not_in(ENDED))
    ):
        subs[row.dev_eui] = Sub(
            row.id,
            row.tenant_id,
            row.dev_eui,
            row.billing_account_id,
            row.contract_id,
            row.offering_id,
            tuple(row.add_on_ids or ()),
            row.status,
            row.throttled,
            row.activated_at,
        )
    contracts = {
        row.id: Terms(
            row.monthly_messages_per_device or 0,
            row.monthly_bytes_per_device or 0,
            row.quota_action,
            row.stop_at_zero_balance,
        )
        for row in session.execute(
            select(
                Contract.id,
                Contract.monthly_messages_per_device,
                Contract.monthly_bytes_per_device,
                Contract.quota_action,
                Contract.stop_at_zero_balance,
            ).where(Contract.id.in_({s.contract_id for s in subs.values()}))
        )
    }
    accounts = {
        row.id: Account(row.payment_mode == "prepaid")
        for row in session.execute(
            select(BillingAccount.id, BillingAccount.payment_mode).where(
                BillingAccount.id.in_({s.billing_account_id for s in subs.values()})
            )
        )
    }
    offerings: set[uuid.UUID] = set()
    for s in subs.values():
        offerings.add(s.offering_id)
        offerings.update(uuid.UUID(a) for a in s.add_on_ids)
    tariffs.load(session, offerings)
    ctx = Context(session, tariffs, subs, contracts, accounts)
    _load_buckets(ctx, usages)
    return ctx


def _load_buckets(ctx: Context, usages: Sequence[Usage]) -> None:
    """Create and lock the counters the batch touches, with their current allowances."""
    wanted: dict[tuple[str, str], tuple[uuid.UUID, int, int]] = {}
    pools: dict[tuple[str, str], tuple[Sub, int, int]] = {}
    for u in usages:
        sub = ctx.subs.get(u.dev_eui)
        if sub is None or sub.tenant_id != u.tenant_id:
            continue
        tariff = ctx.tariff(sub)
        own = (0, 0) if tariff.pooled else (tariff.allowance_messages, tariff.allowance_bytes)
        wanted[("sub:" + str(sub.id), u.period)] = (sub.tenant_id, *own)
        if tariff.pooled:
            pools[(pool_key(sub), u.period)] = (
                sub,
                tariff.allowance_messages,
                tariff.allowance_bytes,
            )
    sizes = _pool_sizes(ctx.session, pools)
    for key, (sub, per_msg, per_bytes) in pools.items():
        n = max(1, sizes.get((sub.billing_account_id, sub.offering_id, key[1]), 1))
        wanted[key] = (sub.tenant_id, per_msg * n, per_bytes * n)
    if not wanted:
        return
    session = ctx.session
    postgres = session.get_bind().dialect.name == "postgresql"
    found = _read_counters(session, {b for b, _ in wanted}, lock=postgres)
    missing = sorted(k for k in wanted if k not in found)
    if missing:
        insert = postgresql.insert if postgres else sqlite.insert
        table = UsageCounter.__table__
        assert isinstance(table, Table)
        session.execute(
            insert(table).on_conflict_do_nothing(index_elements=["bucket", "period"]),
            [
                {
                    "id": new_id(),
                    "tenant_id": wanted[k][0],
                    "bucket": k[0],
                    "period": k[1],
                    "messages": 0,
                    "bytes": 0,
                    "allowance_messages": wanted[k][1],
                    "allowance_bytes": wanted[k][2],
                    "notified_pct": 0,
                    "quota_notified_pct": 0,
                }
                for k in missing
            ],
        )
        found |= _read_counters(session, {b for b, _ in missing}, lock=postgres)
    for key, row in found.items():
        spec = wanted.get(key)
        if spec is None:
            continue
        bucket = Bucket(row[0], row[1], row[2], spec[1], spec[2], row[5], row[6])
        bucket.changed = (spec[1], spec[2]) != (row[3], row[4])
        ctx.buckets[key] = bucket
        ctx.bucket_keys[row[0]] = key[0]


def _read_counters(
    session: Session, buckets: set[str], *, lock: bool
) -> dict[tuple[str, str], tuple[Any, ...]]:
    """(bucket, period) -> (id, messages, bytes, allowance_messages, allowance_bytes,
    notified_pct, quota_notified_pct), read with Core (no ORM objects), locked FOR UPDATE on
    PostgreSQL."""
    t = UsageCounter.__table__
    assert isinstance(t, Table)
    stmt = (
        select(
            t.c.id,
            t.c.messages,
            t.c.bytes,
            t.c.allowance_messages,
            t.c.allowance_bytes,
            t.c.notified_pct,
            t.c.quota_notified_pct,
            t.c.bucket,
            t.c.period,
        )
        .where(t.c.bucket.in_(buckets))
        .order_by(t.c.bucket, t.c.period)
    )
    if lock:
        stmt = stmt.with_for_update()
    return {(r[7], r[8]): tuple(r[:7]) for r in session.connection().execute(stmt)}


def _pool_sizes(
    session: Session, pools: dict[tuple[str, str], tuple[Sub, int, int]]
) -> dict[tuple[uuid.UUID, uuid.UUID, str], int]:
    """Devices sharing each pool: the account's subscriptions on the offering that were
    active at some time in the period (one GROUP BY per period in the batch)."""
    sizes: dict[tuple[uuid.UUID, uuid.UUID, str], int] = {}
    for period in {p for _, p in pools}:
        bounds = period_bounds(period)
        accounts = {s.billing_account_id for (_, p), (s, _, _) in pools.items() if p == period}
        rows = session.execute(
            select(Subscription.billing_account_id, Subscription.offering_id, func.count())
            .where(
                Subscription.billing_account_id.in_(accounts),
                Subscription.activated_at.is_not(None),
                Subscription.activated_at < bounds.end,
                (Subscription.terminated_at.is_(None))
                | (Subscription.terminated_at >= bounds.start),
            )
            .group_by(Subscription.billing_account_id, Subscription.offering_id)
        )
        for account, offering, n in rows:
            sizes[(account, offering, period)] = int(n)
    return sizes


def usage_row(
    u: Usage, sub: Sub | None, amount: int, billable: int, state: str, reason: str | None
) -> tuple[Any, ...]:
    return (
        new_id(),
        u.event_id,
        u.tenant_id,
        u.dev_eui,
        sub.id if sub is not None and reason != "tenant-mismatch" else None,
        sub.billing_account_id if sub is not None and reason != "tenant-mismatch" else None,
        sub.offering_id if sub is not None and reason != "tenant-mismatch" else None,
        u.kind,
        u.size,
        billable,
        u.period,
        u.at,
        amount,
        state,
        reason,
    )


def write_usage(session: Session, rows: Iterable[tuple[Any, ...]]) -> int:
    return insert_rows(session, "usage_records", USAGE_COLUMNS, rows)


def write_counters(session: Session, buckets: Iterable[Bucket]) -> None:
    update_rows(
        session,
        "usage_counters",
        "id",
        (
            "messages",
            "bytes",
            "allowance_messages",
            "allowance_bytes",
            "notified_pct",
            "quota_notified_pct",
        ),
        [
            (
                b.messages,
                b.bytes,
                b.allowance_messages,
                b.allowance_bytes,
                b.notified_pct,
                b.quota_notified_pct,
                b.id,
            )
            for b in buckets
            if b.changed
        ],
    )


def debit_prepaid(session: Session, debits: dict[uuid.UUID, int], at: datetime) -> list[uuid.UUID]:
    """Debit prepaid balances; suspend what the contract stops at zero. Return suspended ids."""
    exhausted: list[uuid.UUID] = []
    for account_id in sorted(debits):
        balance = session.execute(
            update(BillingAccount)
            .where(BillingAccount.id == account_id)
            .values(balance_micros=BillingAccount.balance_micros - debits[account_id])
            .returning(BillingAccount.balance_micros)
            .execution_options(synchronize_session=False)
        ).scalar_one()
        if balance <= 0:
            exhausted.append(account_id)
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
