"""Billing (TMF678): monthly bill runs and dry runs over business months.

A bill covers one billing account for one period (``YYYY-MM`` in the business time zone,
Asia/Shanghai by default) and has three kinds of lines:

- **recurring**: each recurring price of each subscribed offering (and add-on), prorated by
  days for a device activated or terminated during the month: ``amount × days ÷ days in
  month`` per device, rounded to the micro-yuan, one line per offering price;
- **usage**: rated, unbilled usage of the period or earlier (late usage joins the next bill),
  one line per offering and direction, with message and byte counts;
- **one-time**: each one-time price (activation fee) of a device activated in the period.

Each line is rounded to the fen; the subtotal is their sum; VAT is the subtotal × the rate
(``SATIOT_TAX_RATE_BP``) rounded half-up to the fen; the total is subtotal + VAT.

:func:`compute` prices bills without writing anything; the dry run is exactly that, and the
real run (:func:`run_bills`) writes what the same function returns, so their numbers agree.
A bill run skips accounts already billed for the period (the unique account + period), so
re-running it bills nobody twice. On PostgreSQL the run holds a lock on the usage table so that
no usage can be rated between summing it and marking it billed (rating waits those seconds);
on SQLite the run's write transaction already excludes every other writer.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from satiot.bss import billing_sql as q
from satiot.bss import device_fees
from satiot.bss.invoices import invoice_series, take_numbers
from satiot.bss.models import (
    BillRun,
    CustomerBill,
    ProductOffering,
    ProductOfferingPrice,
    Subscription,
    UsageRecord,
)
from satiot.bss.money import prorate, round_to_fen, vat_micros
from satiot.bss.periods import Period, local_date, period_bounds
from satiot.core.audit import record as audit_record
from satiot.core.auth.principal import Principal
from satiot.core.bulk import insert_rows
from satiot.core.config import Settings
from satiot.core.errors import InvalidInput
from satiot.core.ids import new_id

UNITS = {"uplink": "msg", "downlink": "msg"}
DIRECTION = {"uplink": "Uplink messages 上行消息", "downlink": "Downlink messages 下行消息"}


@dataclass
class DraftLine:
    kind: str  # recurring | usage | one-time
    description: str
    quantity: int
    unit: str
    amount_micros: int  # rounded to the fen


@dataclass
class Draft:
    """One bill as computed (the dry run's answer, and what a real run writes)."""

    account_id: str  # ids as the database writes them as text (see billing_sql)
    tenant_id: str
    period: str
    lines: list[DraftLine] = field(default_factory=list)
    usage_raw_micros: int = 0  # usage before rounding (what prepaid rating debited)
    tax_rate_bp: int = 0

    def _sum(self, kind: str) -> int:
        return sum(line.amount_micros for line in self.lines if line.kind == kind)

    @property
    def recurring_micros(self) -> int:
        return self._sum("recurring")

    @property
    def usage_micros(self) -> int:
        return self._sum("usage")

    @property
    def one_time_micros(self) -> int:
        return self._sum("one-time")

    @property
    def subtotal_micros(self) -> int:
        return sum(line.amount_micros for line in self.lines)

    @property
    def tax_micros(self) -> int:
        return vat_micros(self.subtotal_micros, self.tax_rate_bp)

    @property
    def total_micros(self) -> int:
        return self.subtotal_micros + self.tax_micros


def _catalog(
    session: Session, offering_ids: Collection[uuid.UUID]
) -> tuple[dict[uuid.UUID, str], dict[uuid.UUID, list[ProductOfferingPrice]]]:
    names = {
        o.id: o.name
        for o in session.scalars(
            select(ProductOffering).where(ProductOffering.id.in_(offering_ids))
        )
    }
    prices: dict[uuid.UUID, list[ProductOfferingPrice]] = defaultdict(list)
    for p in session.scalars(
        select(ProductOfferingPrice)
        .where(ProductOfferingPrice.offering_id.in_(offering_ids))
        .order_by(ProductOfferingPrice.offering_id, ProductOfferingPrice.id)
    ):
        prices[p.offering_id].append(p)
    return names, prices


def compute(
    session: Session,
    period: Period,
    *,
    tax_rate_bp: int,
    accounts: q.Accounts = None,
) -> list[Draft]:
    """Price the bills of ``period`` for ``accounts`` (all, if None) not yet billed for it.

    Reads only; returns drafts ordered by account id (the order invoice numbers follow).
    """
    subs = q.subscription_groups(session, period, accounts)
    usage = q.usage_groups(session, period, accounts)
    billed = q.billed_accounts(session, period, accounts)
    texts = {g.offering_id for g in subs} | {u.offering_id for u in usage}
    texts.update(a for g in subs for a in g.add_on_ids)
    ids = {t: uuid.UUID(t) for t in texts}  # text form -> id, parsed once each
    names, prices = _catalog(session, set(ids.values())) if ids else ({}, {})
    ranked = sorted(
        (p for ps in prices.values() for p in ps), key=lambda p: (str(p.offering_id), p.id)
    )
    # Plain tuples (rank, kind, amount) per offering text: the loops below run per group.
    plans = {
        t: [(rank, p.kind, p.amount_micros) for rank, p in enumerate(ranked) if p.offering_id == i]
        for t, i in ids.items()
    }
    drafts: dict[str, Draft] = {}
    owners = [(g.account_id, g.tenant_id) for g in subs]
    owners += [(u.account_id, u.tenant_id) for u in usage]
    for account, tenant in owners:
        if account not in billed and account not in drafts:
            drafts[account] = Draft(account, tenant, period.name, tax_rate_bp=tax_rate_bp)

    # recurring and one-time: (account, price rank) -> [devices, device-days, micros]
    fees: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0, 0])
    once: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0])
    month = period.days
    for g in subs:
        if g.account_id in billed:
            continue
        for offering in (g.offering_id, *g.add_on_ids):
            for rank, kind, amount in plans.get(offering, ()):
                if kind == "recurring":
                    acc = fees[(g.account_id, rank)]
                    acc[0] += g.count
                    acc[1] += g.count * g.days
                    acc[2] += g.count * prorate(amount, g.days, month)
                elif kind == "one-time" and g.new:
                    one = once[(g.account_id, rank)]
                    one[0] += g.count
                    one[1] += g.count * amount
    for (account, r), (devices, device_days, micros) in sorted(fees.items()):
        p = ranked[r]
        note = ""
        if device_days < devices * month:
            note = f"; prorated 按天折算: {device_days} of {devices * month} device-days"
        drafts[account].lines.append(
            DraftLine(
                "recurring",
                f"{names.get(p.offering_id, p.offering_id)} — {p.name}{note}",
                devices,
                "device",
                round_to_fen(micros),
            )
        )
    for g2 in sorted(usage, key=lambda g: (g.account_id, g.offering_id, g.kind)):
        if g2.account_id in billed:
            continue
        d = drafts[g2.account_id]
        d.usage_raw_micros += g2.charge_micros
        name = names.get(ids[g2.offering_id], g2.offering_id)
        d.lines.append(
            DraftLine(
                "usage",
                f"{name} — {DIRECTION[g2.kind]}: {g2.messages:,} msg, {g2.bytes:,} B "
                f"({g2.billable_bytes:,} B billable)",
                g2.messages,
                UNITS[g2.kind],
                round_to_fen(g2.charge_micros),
            )
        )
    for (account, r), (devices, micros) in sorted(once.items()):
        p = ranked[r]
        drafts[account].lines.append(
            DraftLine(
                "one-time",
                f"{names.get(p.offering_id, p.offering_id)} — {p.name}",
                devices,
                "device",
                round_to_fen(micros),
            )
        )
    return [drafts[a] for a in sorted(drafts)]


def dry_run(
    session: Session,
    account_id: uuid.UUID,
    period: str,
    *,
    at: datetime,
    tax_rate_bp: int,
    tz: str,
) -> Draft | None:
    """The bill ``account_id`` would get for ``period`` if it were billed at ``at`` (writes
    nothing); None when there is nothing to bill or the account is billed already.

    A month that has not begun is refused (:func:`begun_period`) rather than answered
    "nothing to bill": that answer would read as a fact about a month nobody can know yet (a
    mistyped year, mostly).
    """
    bounds = begun_period(period, at=at, tz=tz)
    drafts = compute(session, bounds, tax_rate_bp=tax_rate_bp, accounts=[account_id])
    return drafts[0] if drafts else None


def begun_period(period: str, *, at: datetime, tz: str) -> Period:
    """The bounds of ``period``, a month under way or over at ``at``; InvalidInput for one
    that has not begun."""
    bounds = period_bounds(period, tz)
    if at < bounds.start:
        raise InvalidInput(
            f"period {period} has not begun (a dry run shows a month under way or over)",
            field="period",
        )
    return bounds


def _check_anything_to_bill(
    session: Session, period: Period, accounts: Collection[uuid.UUID] | None
) -> None:
    """Refuse a run for a month that ended before any subscription (of the given accounts)
    was activated: nothing can be charged for it (no fee, no one-time charge, no usage), and
    an empty run on record for 1970-01, or for 2016-11 typed for 2026-11, is a mistake that
    reads as a fact. A month after the first activation always runs, even if it bills nobody.
    """
    first = select(func.min(Subscription.activated_at))
    if accounts is not None:
        first = first.where(Subscription.billing_account_id.in_(list(accounts)))
    activated = session.scalar(first)
    if activated is None:
        raise InvalidInput(
            "nothing to bill: no subscription has been activated yet", field="period"
        )
    if activated >= period.end:
        raise InvalidInput(
            f"nothing to bill for {period.name}: the first subscription was activated on "
            f"{local_date(activated, period.tz).isoformat()}",
            field="period",
        )


def check_billable(
    session: Session,
    period_name: str,
    *,
    at: datetime,
    tz: str,
    accounts: Collection[uuid.UUID] | None = None,
) -> Period:
    """The period to bill, refused (422, 409) when it has not ended or nothing is left to
    bill in it: what a run checks first, and what queueing one checks before it waits."""
    period = period_bounds(period_name, tz)
    if at < period.end:
        raise InvalidInput(
            f"period {period_name} has not ended yet (a dry run shows the bill so far)",
            field="period",
        )
    _check_anything_to_bill(session, period, accounts)
    return period


@dataclass(frozen=True)
class RunSettings:
    tax_rate_bp: int
    series_prefix: str
    payment_terms_days: int
    tz: str

    @classmethod
    def from_settings(cls, settings: Settings) -> RunSettings:
        """What every caller (API, console, CLI) bills with: the configuration's terms."""
        return cls(
            settings.tax_rate_bp,
            settings.invoice_series_prefix,
            settings.payment_terms_days,
            settings.business_timezone,
        )


def run_bills(
    session: Session,
    principal: Principal,
    period_name: str,
    *,
    at: datetime,
    settings: RunSettings,
    accounts: Collection[uuid.UUID] | None = None,
    step: Callable[[str], None] | None = None,
) -> BillRun:
    """Bill ``period_name`` for every account (or ``accounts``) not yet billed for it.

    One transaction: bills get gap-free numbers, their lines are written, the usage they
    charge moves to ``billed``, and the run is audited once (bills start ``new``). ``step``
    is told what the run does next, in words, as each of its steps starts: a run over
    100,000 accounts takes a minute or more, and whoever waits on it should see it move.
    The API, the CLI and the background job run a month in chunks of accounts instead
    (:mod:`satiot.bss.bill_run_chunks`), from the same three steps.
    """
    period = check_billable(session, period_name, at=at, tz=settings.tz, accounts=accounts)
    run = start_run(session, period_name, at=at)
    bill_accounts(session, run.id, period, at=at, settings=settings, accounts=accounts, step=step)
    finish_run(session, principal, run, at=at)
    return run


def start_run(session: Session, period_name: str, *, at: datetime) -> BillRun:
    """A new run of ``period_name``, ``running`` until :func:`finish_run`."""
    run = BillRun(id=new_id(), period=period_name, dry_run=False, status="running", started_at=at)
    session.add(run)
    session.flush()
    return run


def bill_accounts(
    session: Session,
    run_id: uuid.UUID,
    period: Period,
    *,
    at: datetime,
    settings: RunSettings,
    accounts: q.Accounts,
    step: Callable[[str], None] | None = None,
) -> int:
    """Bill, as part of run ``run_id``, every account (or ``accounts``) not yet billed for
    ``period``: price them, number and write their bills and lines, write each device's fees
    and mark the usage charged billed, in ``session``'s transaction. Return the bills.

    On PostgreSQL the usage table is locked first so that no usage is rated between summing
    it and marking it billed (rating waits); on SQLite the write transaction already excludes
    every other writer. Only the usage of these accounts is claimed: usage rated meanwhile for
    accounts billed earlier in the run waits for the next month's bill, as late usage does."""
    tell = step or (lambda _: None)
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        session.execute(text("LOCK TABLE usage_records IN SHARE ROW EXCLUSIVE MODE"))
    tell(STEPS[0])
    drafts = compute(session, period, tax_rate_bp=settings.tax_rate_bp, accounts=accounts)
    tell(STEPS[1].format(n=len(drafts), s="" if len(drafts) == 1 else "s"))
    if not drafts:
        return 0
    series = invoice_series(settings.series_prefix, at, settings.tz)
    first = take_numbers(session, series, len(drafts))

    def number(i: int) -> str:
        return f"{series}-{first + i:08d}"

    due = at + timedelta(days=settings.payment_terms_days)
    bill_rows = []
    line_rows = []
    for i, d in enumerate(drafts):
        bill_id = new_id()
        bill_rows.append(
            (
                bill_id,
                d.tenant_id,
                d.account_id,
                run_id,
                number(i),
                period.name,
                period.first_day,
                period.last_day,
                "new",
                d.recurring_micros,
                d.usage_micros,
                d.one_time_micros,
                d.tax_rate_bp,
                d.tax_micros,
                d.total_micros,
                0,
                at,
                due,
            )
        )
        line_rows += [
            (new_id(), d.tenant_id, bill_id, ln.kind, ln.description[:300], None, *_amounts(ln))
            for ln in d.lines
        ]
    insert_rows(session, "customer_bills", BILL_COLUMNS, bill_rows)
    if postgres and len(bill_rows) > 1_000:
        # The lines' foreign-key checks and the usage claim look bills up by id; without fresh
        # statistics PostgreSQL plans them for the empty table it last saw (a scan per row).
        session.execute(text("ANALYZE customer_bills"))
    tell(STEPS[2].format(n=len(line_rows), s="" if len(line_rows) == 1 else "s"))
    insert_rows(session, "bill_lines", LINE_COLUMNS, line_rows)
    tell(STEPS[3])
    # What follows concerns this call's bills alone, named by their numbers (a run billed a
    # chunk at a time has bills from earlier chunks; a range needs no list of ids).
    numbers = (number(0), number(len(drafts) - 1))
    device_fees.write_run_fees(session, run_id, period, numbers=numbers)
    tell(STEPS[4])
    _claim_usage(session, run_id, period, numbers)
    return len(drafts)


def finish_run(session: Session, principal: Principal, run: BillRun, *, at: datetime) -> None:
    """Mark ``run`` completed with its bills' count and total, and audit it once."""
    bills, total = session.execute(
        select(
            func.count(CustomerBill.id), func.coalesce(func.sum(CustomerBill.total_micros), 0)
        ).where(CustomerBill.bill_run_id == run.id)
    ).one()
    run.accounts = run.bills = int(bills)
    run.total_micros = int(total)
    run.status = "completed"
    run.finished_at = at
    audit_record(
        session,
        at=at,
        actor=principal.actor,
        action="bill-run.completed",
        target_type="bill-run",
        target_id=str(run.id),
        tenant_id=None,
        after={"period": run.period, "bills": run.bills, "total_micros": run.total_micros},
    )


#: What a run tells ``step`` as each step starts (counts filled in).
STEPS: Final = (
    "pricing the month: recurring charges, usage, one-time charges",
    "numbering and writing {n:,} bill{s}",
    "writing {n:,} bill line{s}",
    "writing each device's fees",
    "marking the month's usage billed",
)

BILL_COLUMNS = (
    "id",
    "tenant_id",
    "billing_account_id",
    "bill_run_id",
    "number",
    "period",
    "period_start",
    "period_end",
    "state",
    "recurring_micros",
    "usage_micros",
    "one_time_micros",
    "tax_rate_bp",
    "tax_micros",
    "total_micros",
    "paid_micros",
    "issued_at",
    "due_at",
)
LINE_COLUMNS = (
    "id",
    "tenant_id",
    "bill_id",
    "kind",
    "description",
    "subscription_id",
    "quantity",
    "unit",
    "amount_micros",
)


def _amounts(line: DraftLine) -> tuple[int, str, int]:
    return (line.quantity, line.unit, line.amount_micros)


def _claim_usage(
    session: Session, run_id: uuid.UUID, period: Period, numbers: tuple[str, str]
) -> None:
    """Mark the usage the run's bills numbered ``numbers`` (first, last) charged as billed,
    pointing at its bill (one ``UPDATE … FROM`` joining those bills)."""
    session.execute(
        update(UsageRecord)
        .where(
            CustomerBill.bill_run_id == run_id,
            CustomerBill.number.between(*numbers),
            CustomerBill.billing_account_id == UsageRecord.billing_account_id,
            UsageRecord.state == "rated",
            UsageRecord.period <= period.name,
        )
        .values(state="billed", bill_id=CustomerBill.id)
        .execution_options(synchronize_session=False)
    )
