"""A prepaid balance's ledger: every change of the balance, written where it is made, with
the balance after it; the entries add up to the balance."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from satiot.bss import balance_history
from satiot.bss.billing import run_bills
from satiot.bss.credit_notes import issue_credit_note
from satiot.bss.invoices import send_bill, validate_bill
from satiot.bss.ledger_models import BalanceEntry
from satiot.bss.models import BillingAccount, CustomerBill
from satiot.bss.payments import record_payment, top_up
from tests.bss.billing_world import (
    DEC_1,
    RUN_SETTINGS,
    november_bill,
    offering,
    price,
    rate_all,
    shop,
    uplink,
)


def _ledger(ctx, account_id) -> list[BalanceEntry]:
    with ctx.db.read() as r:
        return list(r.scalars(balance_history.entries_of(account_id).order_by(BalanceEntry.id)))


def _balance(ctx, account_id) -> int:
    with ctx.db.read() as r:
        return r.get(BillingAccount, account_id).balance_micros


def test_top_ups_usage_a_bill_and_a_credit_each_leave_an_entry(world):
    ctx = world.ctx
    s = shop(world, payment_mode="prepaid", balance=0)
    for reference in ("T1", "T1"):  # the same top-up twice: one entry
        with ctx.db.write() as w:
            top_up(
                w, world.system, s.account_id, amount_micros=200_000_000, method="alipay",
                reference=reference, at=datetime(2026, 11, 1, tzinfo=UTC),
            )  # fmt: skip
    off = offering(ctx, "Monthly", [price("recurring", 100_000_000), price("per-message", 10_000)])
    sub = s.device(off, datetime(2026, 10, 1, tzinfo=UTC))
    for day in (5, 6):  # two rating batches: two usage entries of ¥0.01
        uplink(ctx, sub, 10, datetime(2026, 11, day, tzinfo=UTC))
        rate_all(ctx)
    with ctx.db.write() as w:
        run_bills(w, world.system, "2026-11", at=DEC_1, settings=RUN_SETTINGS)
        bill = w.scalars(select(CustomerBill)).one()
        validate_bill(w, world.system, bill.id, at=DEC_1)
        send_bill(w, world.system, bill.id, at=DEC_1)  # paid from the balance
        number, total = bill.number, bill.total_micros
    with ctx.db.write() as w:
        note = issue_credit_note(
            w, world.system, bill.id, amount_micros=50_000_000, reason="Outage", at=DEC_1,
            series_prefix="SAT", tz="Asia/Shanghai",
        )  # fmt: skip
        note_number, returned = note.number, note.returned_micros

    entries = _ledger(ctx, s.account_id)
    assert [(e.kind, e.reference) for e in entries] == [
        ("top-up", "T1"),
        ("usage", None),
        ("usage", None),
        ("bill", number),
        ("credit", note_number),
    ]
    # ¥100 + 6 % VAT on the ¥100.02 were left to pay when the bill was sent: its usage was
    # debited as it was rated
    assert [e.amount_micros for e in entries] == [
        200_000_000, -10_000, -10_000, -(total - 20_000), returned,
    ]  # fmt: skip
    running = 0
    for e in entries:
        running += e.amount_micros
        assert e.balance_micros == running and e.tenant_id == s.tenant.id
    assert running == _balance(ctx, s.account_id) == 200_000_000 - total + returned
    assert entries[1].at == datetime(2026, 11, 5, tzinfo=UTC)  # the batch's last use


def test_a_postpaid_account_has_no_ledger(world):
    ctx = world.ctx
    s, bill_id = november_bill(world)
    with ctx.db.write() as w:
        validate_bill(w, world.system, bill_id, at=DEC_1)
        send_bill(w, world.system, bill_id, at=DEC_1)
        record_payment(
            w, world.system, bill_id, amount_micros=1_000_000, method="bank", reference="P1",
            at=DEC_1,
        )  # fmt: skip
    assert _ledger(ctx, s.account_id) == [] and _balance(ctx, s.account_id) == 0


def test_a_days_usage_is_one_line_between_the_balances_other_changes(world):
    """Rating batches of one business day add up in the day's usage line; a top-up between
    them closes it, so every line's balance is still the running sum."""
    ctx = world.ctx
    s = shop(world, payment_mode="prepaid", balance=0)

    def pay_in(reference: str) -> None:
        with ctx.db.write() as w:
            top_up(w, world.system, s.account_id, amount_micros=1_000_000, method="alipay",
                   reference=reference, at=datetime(2026, 11, 5, 3, tzinfo=UTC))  # fmt: skip

    pay_in("T1")
    off = offering(ctx, "Per message", [price("per-message", 10_000)])
    sub = s.device(off, datetime(2026, 10, 1, tzinfo=UTC))
    # 5 November, Beijing time: three batches, a top-up after the second; then the 6th
    for hour, then in ((1, None), (2, "T2"), (4, None), (17, None)):  # UTC: the 6th from 16:00
        uplink(ctx, sub, 10, datetime(2026, 11, 5, hour, tzinfo=UTC))
        rate_all(ctx)
        if then:
            pay_in(then)
    entries = _ledger(ctx, s.account_id)
    assert [(e.kind, e.amount_micros) for e in entries] == [
        ("top-up", 1_000_000),
        ("usage", -20_000),  # two batches of the 5th
        ("top-up", 1_000_000),
        ("usage", -10_000),  # the 5th again, after the top-up
        ("usage", -10_000),  # the 6th in Beijing
    ]
    running = 0
    for e in entries:
        running += e.amount_micros
        assert e.balance_micros == running
    assert running == _balance(ctx, s.account_id) == 1_960_000
    assert entries[1].at == datetime(2026, 11, 5, 2, tzinfo=UTC)  # its latest use
