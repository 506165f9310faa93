"""``satiot bills …`` from a shell: bill runs and dry runs, a month's bills validated and sent,
one bill shown, adjusted, credited or refunded, and the ledger's exports (bills, credit notes,
usage statements)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from satiot.cli_common import (
    OutputOption,
    domain_errors,
    fail,
    load_settings,
    opened_output,
    out,
    write_export,
)
from satiot.cli_oss import _migrated, _principal

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

#: A bill as a command names it.
BillArgument = Annotated[str, typer.Argument(help="The bill's number (SAT2026-00000042) or id")]

bills_app = typer.Typer(
    help="Monthly bill runs and their release (validate, send), dry runs, adjustments, credit "
    "notes, refunds, statements and exports (TMF678 customer bills).",
    no_args_is_help=True,
)


@bills_app.command("run")
def bills_run(
    period: Annotated[str, typer.Argument(help="The month to bill, YYYY-MM (it must be over)")],
) -> None:
    """Bill a month for every billing account not yet billed for it, 10,000 accounts to a
    transaction (other writers get their turn between them): gap-free invoice numbers, the
    usage charged marked billed. A run stopped part way is taken up by the next
    `satiot bills run` of the month. Bills start `new`; check them (`satiot bills dry-run`
    shows one beforehand), then `satiot bills validate` and `satiot bills send` the month."""
    from satiot.bss.bill_run_chunks import run_in_chunks
    from satiot.bss.billing import RunSettings
    from satiot.bss.money import format_cny
    from satiot.bss.periods import check_period
    from satiot.core.clock import SystemClock

    settings = load_settings()
    run_settings = RunSettings.from_settings(settings)
    with domain_errors(), _migrated() as database:
        check_period(period)
        with out.status(f"billing {period} …") as status:
            run = run_in_chunks(
                database.write,
                _principal(database, "bill-run"),
                period,
                at=SystemClock().now(),
                settings=run_settings,
                progress=lambda done, total: status.update(
                    f"billing {period}: {done:,} of {total:,} accounts …"
                ),
            )
        bills, accounts, total = run.bills, run.accounts, run.total_micros
    out.print(
        f"{period}: {bills:,} bills for {accounts:,} accounts, {format_cny(total)} in all",
        highlight=False,
    )


@bills_app.command("dry-run")
def bills_dry_run(
    account: Annotated[str, typer.Argument(help="Billing account id")],
    period: Annotated[str, typer.Argument(help="The month, YYYY-MM (the current one too)")],
) -> None:
    """Show the bill an account would get for a month if it were billed now; writes nothing."""
    from satiot.bss.billing import dry_run
    from satiot.bss.models import BillingAccount
    from satiot.bss.money import format_cny
    from satiot.bss.periods import check_period
    from satiot.core.clock import SystemClock

    with domain_errors():
        check_period(period)
    try:
        account_id = uuid.UUID(account)
    except ValueError:
        fail(f"{account!r} is not a billing account id")
    settings = load_settings()
    with domain_errors(), _migrated() as database, database.read() as s:
        if s.get(BillingAccount, account_id) is None:
            fail(f"no billing account {account_id}")
        draft = dry_run(
            s,
            account_id,
            period,
            at=SystemClock().now(),
            tax_rate_bp=settings.tax_rate_bp,
            tz=settings.business_timezone,
        )
    if draft is None:
        out.print(f"{period}: nothing to bill for {account_id} (or billed already)")
        return
    table = Table(title=f"Dry run: {account_id}, {period}")
    for column in ("kind", "description", "quantity", "unit", "amount"):
        table.add_column(column, justify="right" if column in ("quantity", "amount") else "left")
    for line in draft.lines:
        table.add_row(
            line.kind,
            line.description,
            f"{line.quantity:,}",
            line.unit,
            format_cny(line.amount_micros),
        )
    out.print(table)
    out.print(
        f"subtotal {format_cny(draft.subtotal_micros)}, VAT {format_cny(draft.tax_micros)}, "
        f"total {format_cny(draft.total_micros)}",
        highlight=False,
    )


def _find_bill(session: Session, ref: str) -> tuple[uuid.UUID, str]:
    """A bill's id and number from its number or id, or exit with a one-line error."""
    from sqlalchemy import select

    from satiot.bss.models import CustomerBill

    try:
        where = CustomerBill.id == uuid.UUID(ref)
    except ValueError:
        where = CustomerBill.number == ref.strip().upper()
    found = session.execute(select(CustomerBill.id, CustomerBill.number).where(where)).first()
    if found is None:
        fail(f"no bill {ref!r} (give its number, e.g. SAT2026-00000042, or its id)")
    return found[0], found[1]


@bills_app.command("show")
def bills_show(
    bill: BillArgument,
) -> None:
    """Show one bill as its invoice page does: account and customer, period, state and dates,
    its lines, subtotal, VAT and total, what was paid and credited and what is still owed, its
    payments and refunds, and its credit notes."""
    from sqlalchemy import select

    from satiot.bss.credit_notes import notes_of
    from satiot.bss.invoices import get_bill, lines_of
    from satiot.bss.models import BillingAccount, Customer, Payment
    from satiot.bss.money import format_cny
    from satiot.core.days import business_day

    with domain_errors(), _migrated() as database, database.read() as s:
        bill_id, number = _find_bill(s, bill)
        b = get_bill(s, bill_id)
        account = s.get(BillingAccount, b.billing_account_id)
        customer = s.get(Customer, account.customer_id) if account else None
        lines = lines_of(s, bill_id)
        paid = list(
            s.scalars(select(Payment).where(Payment.bill_id == bill_id).order_by(Payment.id))
        )
        notes = notes_of(s, bill_id)
        owner = f"{customer.name} ({customer.uscc}), " if customer else ""
        out.print(
            f"{number}  {b.state}  {b.period}  {owner}account {account.name if account else ''}"
            f"\nissued {business_day(b.issued_at)}, due {business_day(b.due_at)}",
            highlight=False,
            soft_wrap=True,
        )
        table = Table(title=f"Invoice {number}")
        for column in ("kind", "description", "quantity", "unit", "amount"):
            right = column in ("quantity", "amount")
            table.add_column(column, justify="right" if right else "left")
        for line in lines:
            table.add_row(
                line.kind,
                line.description,
                f"{line.quantity:,}",
                line.unit,
                format_cny(line.amount_micros),
            )
        out.print(table)
        owed = b.due_micros
        out.print(
            f"subtotal {format_cny(b.subtotal_micros)}, VAT {format_cny(b.tax_micros)}, "
            f"total {format_cny(b.total_micros)}; paid {format_cny(b.paid_micros)}, "
            f"credited {format_cny(b.credited_micros)}; "
            + (f"still owed {format_cny(owed)}" if owed >= 0 else f"to refund {format_cny(-owed)}"),
            highlight=False,
            soft_wrap=True,
        )
        if paid:
            moneys = Table(title="Payments and refunds")
            for column in ("received", "method", "reference", "amount"):
                moneys.add_column(column, justify="right" if column == "amount" else "left")
            for p in paid:
                moneys.add_row(
                    str(business_day(p.received_at)),
                    p.method,
                    p.reference,
                    format_cny(p.amount_micros),
                )
            out.print(moneys)
        if notes:
            credits = Table(title="Credit notes")
            for column in ("number", "issued", "reason", "before VAT", "VAT", "credited"):
                right = column in ("before VAT", "VAT", "credited")
                credits.add_column(column, justify="right" if right else "left")
            for n in notes:
                credits.add_row(
                    n.number,
                    str(business_day(n.issued_at)),
                    n.reason,
                    format_cny(n.subtotal_micros),
                    format_cny(n.tax_micros),
                    format_cny(n.total_micros),
                )
            out.print(credits)


@bills_app.command("adjust")
def bills_adjust(
    bill: BillArgument,
    amount: Annotated[
        str, typer.Option("--amount", help="Yuan: below zero a credit (-50.00), above a charge")
    ],
    reason: Annotated[
        str, typer.Option("--reason", help="Why: the line's description on the invoice")
    ],
) -> None:
    """Add an adjustment line to a bill still new or on hold, and work out its VAT and total
    again. A validated bill not yet sent is held first (`satiot bills hold`); once sent,
    correct it with a credit note (`satiot bills credit`)."""
    from satiot.bss.bill_adjustments import adjust_bill
    from satiot.bss.money import format_cny, yuan_amount
    from satiot.core.clock import SystemClock

    with domain_errors():
        micros = yuan_amount(amount, example="-50.00", signed=True)
    with domain_errors(), _migrated() as database, database.write() as s:
        bill_id, number = _find_bill(s, bill)
        done = adjust_bill(
            s,
            _principal(database, "bill-adjustment"),
            bill_id,
            amount_micros=micros,
            reason=reason,
            at=SystemClock().now(),
        )
        subtotal, tax, total = (
            done.bill.subtotal_micros,
            done.bill.tax_micros,
            done.bill.total_micros,
        )
    out.print(
        f"{number}: adjusted by {format_cny(micros)}; subtotal {format_cny(subtotal)}, "
        f"VAT {format_cny(tax)}, total {format_cny(total)}",
        highlight=False,
    )


@bills_app.command("credit")
def bills_credit(
    bill: BillArgument,
    amount: Annotated[str, typer.Option("--amount", help="Yuan credited before VAT, e.g. 50.00")],
    reason: Annotated[str, typer.Option("--reason", help="Why: printed on the credit note")],
) -> None:
    """Issue a credit note on a bill the customer has received: the amount and its VAT come
    off what is still owed (on a prepaid account they go back to the balance; beyond what a
    postpaid customer owes, record the refund with `satiot bills refund`). A bill not yet
    validated is adjusted instead (`satiot bills adjust`)."""
    from satiot.bss.credit_notes import issue_credit_note
    from satiot.bss.invoices import get_bill
    from satiot.bss.money import format_cny, yuan_amount
    from satiot.core.clock import SystemClock

    settings = load_settings()
    with domain_errors():
        micros = yuan_amount(amount, example="50.00")
    with domain_errors(), _migrated() as database, database.write() as s:
        bill_id, number = _find_bill(s, bill)
        note = issue_credit_note(
            s,
            _principal(database, "credit-note"),
            bill_id,
            amount_micros=micros,
            reason=reason,
            at=SystemClock().now(),
            series_prefix=settings.invoice_series_prefix,
            tz=settings.business_timezone,
        )
        figures = (note.number, note.subtotal_micros, note.tax_micros, note.total_micros)
        due = get_bill(s, bill_id).due_micros
    credit_number, subtotal, tax, total = figures
    out.print(
        f"{credit_number} credits {number}: {format_cny(subtotal)} + VAT {format_cny(tax)} = "
        f"{format_cny(total)}; "
        + (f"still owed {format_cny(due)}" if due >= 0 else f"to refund {format_cny(-due)}"),
        highlight=False,
        soft_wrap=True,
    )


@bills_app.command("refund")
def bills_refund(
    bill: BillArgument,
    amount: Annotated[str, typer.Option("--amount", help="Yuan paid back, e.g. 10.00")],
    reference: Annotated[
        str, typer.Option("--reference", help="The transfer's serial (unique per account)")
    ],
    method: Annotated[str, typer.Option("--method", help="How it was paid")] = "bank-transfer",
) -> None:
    """Record money paid back on a bill whose credit notes took off more than was left to pay.
    The same reference again records nothing new."""
    from satiot.bss.invoices import get_bill
    from satiot.bss.money import format_cny, yuan_amount
    from satiot.bss.payments import record_refund
    from satiot.core.clock import SystemClock

    with domain_errors():
        micros = yuan_amount(amount, example="10.00")
    with domain_errors(), _migrated() as database, database.write() as s:
        bill_id, number = _find_bill(s, bill)
        _, new = record_refund(
            s,
            _principal(database, "refund"),
            bill_id,
            amount_micros=micros,
            method=method,
            reference=reference,
            at=SystemClock().now(),
        )
        due = get_bill(s, bill_id).due_micros
    done = "refunded" if new else "already refunded under this reference:"
    out.print(
        f"{number}: {done} {format_cny(micros)}; owed to the customer {format_cny(max(-due, 0))}",
        highlight=False,
        soft_wrap=True,
    )


@bills_app.command("export")
def bills_export(
    output: OutputOption = None,
    period: Annotated[str | None, typer.Option(help="Only this month's bills, YYYY-MM")] = None,
    state: Annotated[str | None, typer.Option(help="Only bills in this state, e.g. sent")] = None,
    to_refund: Annotated[
        bool, typer.Option("--to-refund", help="Only bills that owe their customer money")
    ] = False,
    overdue: Annotated[
        bool, typer.Option("--overdue", help="Only bills still owed past their due date")
    ] = False,
) -> None:
    """Every bill as CSV for the ledger, one line per invoice: number, period, state, customer
    and credit code, account, issue and due dates, each charge, adjustments, subtotal, VAT,
    total, paid, credited and balance due in yuan. UTF-8 with a byte-order mark, as Excel opens
    it; a progress bar when writing to a file."""
    from sqlalchemy import func, select

    from satiot.bss.bill_export import export_bills
    from satiot.bss.invoices import bill_filters
    from satiot.bss.models import CustomerBill
    from satiot.bss.periods import check_period
    from satiot.bss.states import BILL
    from satiot.core.clock import SystemClock

    if state is not None and state not in BILL.states:
        fail(f"--state {state!r} is not a bill state ({', '.join(BILL.states)})")
    if period is not None:
        with domain_errors():
            check_period(period)
    where = bill_filters(
        period=period,
        state=state,
        account_id=None,
        all_tenants=True,
        to_refund=to_refund,
        overdue_at=SystemClock().now() if overdue else None,
    )
    with _migrated() as database, database.read() as s:
        total = write_export(
            output,
            lambda progress: export_bills(s, where, progress=progress),
            lambda: s.scalar(select(func.count()).select_from(CustomerBill).where(*where)) or 0,
            "bills",
        )
    if total is not None:
        out.print(f"wrote {total} bills to {output}", highlight=False, soft_wrap=True)


@bills_app.command("credit-notes")
def bills_credit_notes(
    output: OutputOption = None,
    month: Annotated[
        str | None, typer.Option(help="Only notes issued in this month, YYYY-MM")
    ] = None,
) -> None:
    """Every credit note as a CSV register for the ledger, one line per note: number, issue
    date, the invoice it corrects, customer and credit code, account, amount before VAT, VAT,
    total, what went back to a prepaid balance, reason and who issued it. UTF-8 with a
    byte-order mark; a progress bar when writing to a file."""
    from sqlalchemy import func, select

    from satiot.bss.credit_note_export import export_notes, note_filters
    from satiot.bss.models import CreditNote

    settings = load_settings()
    with domain_errors():
        where = note_filters(month=month, account_id=None, tz=settings.business_timezone)
    with _migrated() as database, database.read() as s:
        total = write_export(
            output,
            lambda progress: export_notes(s, where, progress=progress),
            lambda: s.scalar(select(func.count()).select_from(CreditNote).where(*where)) or 0,
            "credit notes",
        )
    if total is not None:
        out.print(f"wrote {total} credit notes to {output}", highlight=False, soft_wrap=True)


@bills_app.command("received")
def bills_received(
    output: OutputOption = None,
    month: Annotated[
        str | None, typer.Option(help="Only what was received in this month, YYYY-MM (China)")
    ] = None,
    kind: Annotated[str | None, typer.Option(help="Only payment, refund or top-up")] = None,
) -> None:
    """Payments, refunds and top-ups as CSV, one line per entry, oldest first, to hold against
    a bank statement: received time (China), kind, amount in yuan (a refund below zero),
    method, reference, the invoice and its month, customer and credit code, account, who
    recorded it. UTF-8 with a byte-order mark; a progress bar when writing to a file."""
    from sqlalchemy import func, select

    from satiot.bss.models import Payment
    from satiot.bss.payment_export import export_payments
    from satiot.bss.payments import listed

    tz = load_settings().business_timezone
    with domain_errors():
        where = listed(kind=kind, month=month, tz=tz)
    with _migrated() as database, database.read() as s:
        total = write_export(
            output,
            lambda progress: export_payments(s, where, tz=tz, progress=progress),
            lambda: s.scalar(select(func.count()).select_from(Payment).where(*where)) or 0,
            "entries",
        )
    if total is not None:
        out.print(f"wrote {total} entries to {output}", highlight=False, soft_wrap=True)


@bills_app.command("statement")
def bills_statement(
    bill: BillArgument,
    output: OutputOption = None,
) -> None:
    """A bill's device statement as CSV: one line per device with its identities, days of
    service, recurring and one-time fees, uplink and downlink messages, bytes, billable bytes,
    usage charge and total, exactly in yuan (they add up to the bill's lines before each line
    is rounded to the fen). UTF-8 with a byte-order mark, as Excel opens it; a progress bar
    when writing to a file."""
    from satiot.bss.bill_statement import device_count, export_statement

    with _migrated() as database, database.read() as s:
        bill_id, number = _find_bill(s, bill)
        total = write_export(
            output,
            lambda progress: export_statement(s, bill_id, number, progress=progress),
            lambda: device_count(s, bill_id),
            "devices",
        )
    if total is not None:
        out.print(
            f"wrote {total} devices of bill {number} to {output}", highlight=False, soft_wrap=True
        )


@bills_app.command("account-statement")
def bills_account_statement(
    account: Annotated[str, typer.Argument(help="Billing account id")],
    start: Annotated[
        str | None, typer.Option("--from", help="First day, YYYY-MM-DD (default: the first entry)")
    ] = None,
    end: Annotated[str | None, typer.Option("--to", help="Last day (default: today)")] = None,
    output: OutputOption = None,
) -> None:
    """A billing account's statement as CSV: its invoices, credit notes, payments and refunds
    in date order with what was owed after each, between an opening and a closing balance
    (the business time zone's days, both included)."""
    from datetime import date

    from satiot.bss.account_statement import export_statement, statement
    from satiot.bss.money import fen_text
    from satiot.bss.periods import local_date
    from satiot.core.clock import SystemClock

    try:
        account_id = uuid.UUID(account)
    except ValueError:
        fail(f"{account!r} is not a billing account id (a UUID)")
    days: list[date | None] = []
    for option, text in (("--from", start), ("--to", end)):
        try:
            days.append(None if text is None else date.fromisoformat(text))
        except ValueError:
            fail(f"{option} {text!r} is not a day (YYYY-MM-DD)")
    tz = load_settings().business_timezone
    last = days[1] or local_date(SystemClock().now(), tz)
    with domain_errors(), _migrated() as database, database.read() as s:
        found = statement(s, account_id, start=days[0], end=last, tz=tz)
    with opened_output(output) as f:
        f.writelines(export_statement(found, tz))
    if output is not None:
        out.print(
            f"wrote the statement of {found.account_name} ({len(found.entries)} entries, "
            f"closing {fen_text(found.closing_micros)}) to {output}",
            highlight=False,
            soft_wrap=True,
        )


@bills_app.command("balance")
def bills_balance(
    account: Annotated[str, typer.Argument(help="Billing account id (a prepaid one)")],
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="How many, newest first")] = 20,
) -> None:
    """A prepaid account's balance history, newest first: each top-up, usage debit, bill paid
    from the balance and credit refunded to it, with the balance after it."""
    from satiot.bss.accounts import balance_text, get_account
    from satiot.bss.balance_history import KINDS, entries_of
    from satiot.bss.ledger_models import BalanceEntry
    from satiot.bss.money import format_cny

    try:
        account_id = uuid.UUID(account)
    except ValueError:
        fail(f"{account!r} is not a billing account id (a UUID)")
    with domain_errors(), _migrated() as database, database.read() as s:
        found = get_account(s, account_id)
        title = f"{found.name}: balance {balance_text(found)}"
        entries = list(
            s.scalars(entries_of(account_id).order_by(BalanceEntry.id.desc()).limit(limit))
        )
    table = Table("when", "what", "reference", "change", "balance after", title=title)
    for column in table.columns[3:]:
        column.justify = "right"
    for e in entries:
        table.add_row(
            e.at.strftime("%Y-%m-%d %H:%M:%S"),
            KINDS.get(e.kind, e.kind),
            e.reference or "",
            format_cny(e.amount_micros),
            format_cny(e.balance_micros),
        )
    out.print(table)
    if not entries:
        out.print("no change of the balance yet")
