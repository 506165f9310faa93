"""Each device's fees on the bills of a run: what the statement shows next to its usage.

A bill's recurring line says "1,000 devices, prorated: 29,400 of 30,000 device-days"; a
customer reconciling it asks which devices those were, what each one's monthly fee came to,
and which of them it paid for without any traffic. The run that prices the bills writes, in
its transaction, one :class:`~satiot.bss.device_fee_models.BillDeviceFee` per device whose
offering or add-ons carry a fee: the same subscriptions, the same days (the expressions of
:func:`satiot.bss.billing_sql.service`) and the same prices the bill's lines were summed from,
rounded per price as the lines are, so a bill's devices' fees add up to its lines before they
are rounded to the fen.

The database does it in one ``INSERT … SELECT``: a month-end run writes a million rows, and
read into Python and written back they cost a third of the whole run. The prices become
``CASE`` expressions over the few offerings and add-on lists the run's devices hold (read
first, with ``DISTINCT``), and the rows are written in (bill, subscription) order, the order of
the table's key, so that each goes to the end of its index rather than to a random page.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Text,
    case,
    cast,
    insert,
    literal,
    or_,
    select,
)
from sqlalchemy.orm import Session

from satiot.bss import billing_sql as q
from satiot.bss.device_fee_models import BillDeviceFee
from satiot.bss.models import CustomerBill, ProductOfferingPrice, Subscription
from satiot.bss.periods import Period

COLUMNS: Final = (
    "tenant_id",
    "bill_id",
    "subscription_id",
    "first_day",
    "last_day",
    "recurring_micros",
    "one_time_micros",
)

#: An offering's fees as (kind, amount): its recurring and one-time prices.
Plan = Sequence[tuple[str, int]]


def fee_plans(session: Session) -> dict[uuid.UUID, Plan]:
    """The fee prices of every offering: a catalog holds tens of offerings' versions, not
    thousands."""
    out: dict[uuid.UUID, list[tuple[str, int]]] = {}
    p = ProductOfferingPrice
    for offering, kind, amount in session.execute(
        select(p.offering_id, p.kind, p.amount_micros)
        .where(p.kind.in_(("recurring", "one-time")))
        .order_by(p.offering_id, p.id)
    ):
        out.setdefault(offering, []).append((kind, int(amount)))
    return dict(out)


def write_run_fees(
    session: Session,
    run_id: uuid.UUID,
    period: Period,
    *,
    numbers: tuple[str, str] | None = None,
) -> int:
    """Write the fees of every device on the bills of run ``run_id`` (those numbered
    ``numbers``, first and last, when the run bills its accounts a chunk at a time); return
    how many rows were written."""
    days, served = q.service(period)
    # The run's devices with their days, once: the fees below refer to these columns (each
    # day is a CASE over the month's days, and its parameters are bound here alone).
    d = (
        select(
            CustomerBill.tenant_id.label("tenant_id"),
            CustomerBill.id.label("bill_id"),
            Subscription.id.label("subscription_id"),
            Subscription.offering_id.label("offering_id"),
            cast(Subscription.add_on_ids, Text).label("add_ons"),
            *days,
        )
        .join(CustomerBill, CustomerBill.billing_account_id == Subscription.billing_account_id)
        .where(CustomerBill.bill_run_id == run_id, *served, *_numbered(numbers))
        .subquery("served")
        .c
    )
    kinds = session.execute(select(d.offering_id, d.add_ons).distinct()).all()
    plans = fee_plans(session)
    offerings = {o for o, _ in kinds if o in plans}
    lists = {t: q.add_ons_of(t) for _, t in kinds}
    lists = {t: ids for t, ids in lists.items() if any(uuid.UUID(a) in plans for a in ids)}
    if not offerings and not lists:
        return 0
    span = d.last_day - d.first_day + 1
    month = period.days

    def fees(plan: Plan) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
        """The recurring and one-time fees of a plan, as SQL over the device's days: each
        recurring price prorated as ``money.prorate`` does (amount × days ÷ days in month,
        half up, in integers), in 64 bits (amount × days passes 2³¹ on PostgreSQL)."""
        recurring: ColumnElement[Any] = _big(0)
        once = 0
        for kind, amount in plan:
            if kind == "recurring":
                recurring = recurring + case(
                    (span >= month, _big(amount)),
                    else_=(_big(2 * amount) * span + month) // (2 * month),
                )
            else:
                once += amount
        return recurring, _big(once) * d.new

    def by(value: Any, plans_of: dict[Any, Plan]) -> list[ColumnElement[Any]]:
        """The recurring and one-time fees as ``CASE value WHEN …`` over ``plans_of``."""
        if not plans_of:
            return [_big(0), _big(0)]
        parts = {key: fees(plan) for key, plan in plans_of.items()}
        return [
            case({key: pair[i] for key, pair in parts.items()}, value=value, else_=_big(0))
            for i in (0, 1)
        ]

    own = by(d.offering_id, {o: plans[o] for o in offerings})
    extra = by(
        d.add_ons,
        {t: [fee for a in ids for fee in plans.get(uuid.UUID(a), ())] for t, ids in lists.items()},
    )
    rows = (
        select(
            d.tenant_id,
            d.bill_id,
            d.subscription_id,
            d.first_day,
            d.last_day,
            own[0] + extra[0],
            own[1] + extra[1],
        )
        .where(or_(d.offering_id.in_(list(offerings)), d.add_ons.in_(list(lists))))
        .order_by(d.bill_id, d.subscription_id)
    )
    written = session.execute(insert(BillDeviceFee).from_select(list(COLUMNS), rows))
    return int(getattr(written, "rowcount", 0) or 0)


def _numbered(numbers: tuple[str, str] | None) -> list[ColumnElement[bool]]:
    return [] if numbers is None else [CustomerBill.number.between(*numbers)]


def _big(value: int) -> ColumnElement[int]:
    """An integer the database computes with in 64 bits."""
    return cast(literal(value), BigInteger)
