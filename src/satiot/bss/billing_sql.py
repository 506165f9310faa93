"""The set-based queries of a bill run: the database groups, Python only prices the groups.

Three ``GROUP BY`` queries cover any number of accounts:

- subscriptions by (account, offering, add-ons, first and last day active in the period, new
  this period): a million devices that were active all month collapse into one group per
  account and offering. The day of a timestamp is found by comparing it with the UTC instants
  at which each local day begins (bound parameters), which works alike on SQLite and
  PostgreSQL and in any time zone;
- rated, unbilled usage of the period and earlier (late usage joins the next bill) by
  (account, offering, direction);
- which accounts already have a bill for the period.

Ids come back as text (``CAST(… AS VARCHAR)``: 32 hex digits on SQLite, the dashed form on
PostgreSQL, both accepted back by bulk writes): a million rows of ``uuid.UUID`` objects would
cost more than the queries. The account's tenant rides along in each group.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, String, Text, case, cast, func, literal, select
from sqlalchemy.orm import Session

from satiot.bss.models import CustomerBill, Subscription, UsageRecord
from satiot.bss.periods import Period

GROUP_KEYS = (
    "account_id",
    "tenant_id",
    "offering_id",
    "add_ons",
    "first_day",
    "last_day",
    "new",
)
#: Accounts per ``IN (…)`` list when a run is limited to some accounts.
CHUNK = 5_000


@dataclass(frozen=True)
class SubscriptionGroup:
    account_id: str
    tenant_id: str
    offering_id: str
    add_on_ids: tuple[str, ...]
    first_day: int  # 1-based day of the period on which service began (1: before the period)
    last_day: int  # last day of the period with service
    new: bool  # activated during the period (one-time charges apply)
    count: int

    @property
    def days(self) -> int:
        return self.last_day - self.first_day + 1


@dataclass(frozen=True)
class UsageGroup:
    account_id: str
    tenant_id: str
    offering_id: str
    kind: str
    messages: int
    bytes: int
    billable_bytes: int
    charge_micros: int


@dataclass(frozen=True)
class AccountSpan:
    """The accounts whose ids lie from ``first`` to ``last``: a chunk of a month's run, which
    takes the accounts still to bill in id order, named without a list of its ids (on
    PostgreSQL, a chunk's two lists of 5,000 ids made each of its queries scan a table twice)."""

    first: uuid.UUID
    last: uuid.UUID


#: Which accounts a query covers: all (None), a list of them, or a span of ids.
Accounts = Collection[uuid.UUID] | AccountSpan | None


def _filters(column: Any, accounts: Accounts) -> Iterator[ColumnElement[bool] | None]:
    """The criteria to run a query under, once each, to cover ``accounts`` on ``column``: none
    for all accounts, a range for a span, ``IN`` lists of :data:`CHUNK` ids for a list."""
    if accounts is None:
        yield None
    elif isinstance(accounts, AccountSpan):
        yield column.between(accounts.first, accounts.last)
    else:
        items = sorted(accounts)
        for i in range(0, len(items), CHUNK):
            yield column.in_(items[i : i + CHUNK])


def _day_of(column: Any, starts: list[Any], *, inclusive: bool) -> ColumnElement[int]:
    """1-based day of the period containing ``column`` (``inclusive``: an instant exactly at
    midnight belongs to the day before, as an end of service does)."""
    whens = [
        (column <= starts[k] if inclusive else column < starts[k], literal(k))
        for k in range(1, len(starts) - 1)
    ]
    return case(*whens, else_=literal(len(starts) - 1))


def service(period: Period) -> tuple[list[ColumnElement[Any]], list[ColumnElement[bool]]]:
    """The first and last day of ``period`` each subscription had service and whether it
    began in it (labelled ``first_day``, ``last_day``, ``new``), and the criteria of a
    subscription that had service in the period: what both a run's groups and its devices'
    fees are computed from."""
    starts = period.day_starts()
    first = _day_of(Subscription.activated_at, starts, inclusive=False).label("first_day")
    last = case(
        (Subscription.terminated_at.is_(None), literal(period.days)),
        else_=_day_of(Subscription.terminated_at, starts, inclusive=True),
    ).label("last_day")
    new = case((Subscription.activated_at >= period.start, literal(1)), else_=literal(0)).label(
        "new"
    )
    served = [
        Subscription.activated_at.is_not(None),
        Subscription.activated_at < period.end,
        Subscription.terminated_at.is_(None) | (Subscription.terminated_at > period.start),
    ]
    return [first, last, new], served


def subscription_groups(
    session: Session, period: Period, accounts: Accounts
) -> list[SubscriptionGroup]:
    days, served = service(period)
    add_ons = cast(Subscription.add_on_ids, Text).label("add_ons")
    out: list[SubscriptionGroup] = []
    for where in _filters(Subscription.billing_account_id, accounts):
        inner = select(
            cast(Subscription.billing_account_id, String).label("account_id"),
            cast(Subscription.tenant_id, String).label("tenant_id"),
            cast(Subscription.offering_id, String).label("offering_id"),
            add_ons,
            *days,
        ).where(*served)
        if where is not None:
            inner = inner.where(where)
        per_sub = inner.subquery("per_sub")
        keys = [per_sub.c[name] for name in GROUP_KEYS]
        stmt = select(*keys, func.count().label("n")).group_by(*keys)
        for row in session.execute(stmt):
            out.append(
                SubscriptionGroup(
                    row.account_id,
                    row.tenant_id,
                    row.offering_id,
                    add_ons_of(row.add_ons),
                    int(row.first_day),
                    int(row.last_day),
                    bool(row.new),
                    int(row.n),
                )
            )
    return out


_ADD_ONS: dict[str, tuple[str, ...]] = {}


def add_ons_of(text: str | None) -> tuple[str, ...]:
    """The add-on ids of a JSON list (few distinct lists: parsed once each)."""
    if not text:
        return ()
    found = _ADD_ONS.get(text)
    if found is None:
        value = json.loads(text)
        found = tuple(sorted(str(v) for v in value)) if isinstance(value, list) else ()
        if len(_ADD_ONS) < 10_000:
            _ADD_ONS[text] = found
    return found


def usage_groups(session: Session, period: Period, accounts: Accounts) -> list[UsageGroup]:
    out: list[UsageGroup] = []
    for where in _filters(UsageRecord.billing_account_id, accounts):
        account = cast(UsageRecord.billing_account_id, String).label("account_id")
        tenant = cast(UsageRecord.tenant_id, String).label("tenant_id")
        offering = cast(UsageRecord.offering_id, String).label("offering_id")
        stmt = (
            select(
                account,
                tenant,
                offering,
                UsageRecord.kind,
                func.count().label("n"),
                func.sum(UsageRecord.bytes).label("b"),
                func.sum(UsageRecord.billable_bytes).label("bb"),
                func.sum(UsageRecord.charge_micros).label("c"),
            )
            .where(UsageRecord.state == "rated", UsageRecord.period <= period.name)
            .group_by(
                UsageRecord.billing_account_id,
                UsageRecord.tenant_id,
                UsageRecord.offering_id,
                UsageRecord.kind,
            )
        )
        if where is not None:
            stmt = stmt.where(where)
        for row in session.execute(stmt):
            if row.account_id is None or row.offering_id is None:
                continue
            out.append(
                UsageGroup(
                    row.account_id,
                    row.tenant_id,
                    row.offering_id,
                    row.kind,
                    int(row.n),
                    int(row.b or 0),
                    int(row.bb or 0),
                    int(row.c or 0),
                )
            )
    return out


def billed_accounts(session: Session, period: Period, accounts: Accounts) -> set[str]:
    """Accounts (as text) that already have a bill for ``period``."""
    found: set[str] = set()
    for where in _filters(CustomerBill.billing_account_id, accounts):
        stmt = select(cast(CustomerBill.billing_account_id, String)).where(
            CustomerBill.period == period.name
        )
        if where is not None:
            stmt = stmt.where(where)
        found.update(session.scalars(stmt))
    return found
