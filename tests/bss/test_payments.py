"""Payments against bills, idempotent references, top-ups and prepaid settlement."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from satiot.bss.billing import run_bills
from satiot.bss.invoices import send_bill, validate_bill
from satiot.bss.models import BillingAccount, CustomerBill, Payment, Subscription
from satiot.bss.payments import record_payment, top_up
from satiot.core.errors import Conflict, IllegalTransition, InvalidInput
from tests.bss.billing_world import DEC_1, RUN_SETTINGS, november_bill, offering, price, shop


def _sent_bill(world, **shop_kw):
    s, bill_id = november_bill(world, **shop_kw)
    with world.ctx.db.write() as w:
        validate_bill(w, world.system, bill_id, at=DEC_1)
        send_bill(w, world.system, bill_id, at=DEC_1)
    return s, bill_id


def _bill(ctx, bill_id):
    with ctx.db.read() as r:
        return r.get(CustomerBill, bill_id)


def test_partial_then_full_payment_settles_the_bill(world):
    ctx = world.ctx
    _, bill_id = _sent_bill(world)
    total = _bill(ctx, bill_id).total_micros  # ¥100.01 + 6 % = ¥106.01
    assert total == 106_010_000
    with ctx.db.write() as w:
        record_payment(
            w,
            world.system,
            bill_id,
            amount_micros=50_000_000,
            method="bank",
            reference="T1",
            at=DEC_1,
        )
    assert _bill(ctx, bill_id).state == "partiallyPaid"
    with ctx.db.write() as w:
        record_payment(
            w,
            world.system,
            bill_id,
            amount_micros=total - 50_000_000,
            method="bank",
            reference="T2",
            at=DEC_1,
        )
    bill = _bill(ctx, bill_id)
    assert (bill.state, bill.paid_micros) == ("settled", total)


def test_a_reference_records_a_payment_once(world):
    ctx = world.ctx
    _, bill_id = _sent_bill(world)
    kw = {"amount_micros": 1_000_000, "method": "bank", "reference": "BANK-42", "at": DEC_1}
    with ctx.db.write() as w:
        first, new = record_payment(w, world.system, bill_id, **kw)
    with ctx.db.write() as w:
        again, new_again = record_payment(w, world.system, bill_id, **kw)
    assert (new, new_again, again.id) == (True, False, first.id)
    assert _bill(ctx, bill_id).paid_micros == 1_000_000
    with ctx.db.write() as w, pytest.raises(Conflict):
        record_payment(w, world.system, bill_id, **(kw | {"amount_micros": 2_000_000}))


def test_overpaying_and_paying_an_unsent_bill_are_refused(world):
    ctx = world.ctx
    _, bill_id = _sent_bill(world)
    with ctx.db.write() as w, pytest.raises(InvalidInput):
        record_payment(
            w, world.system, bill_id, amount_micros=10**12, method="bank", reference="X", at=DEC_1
        )
    with ctx.db.write() as w, pytest.raises(InvalidInput):
        record_payment(
            w, world.system, bill_id, amount_micros=0, method="bank", reference="Y", at=DEC_1
        )
    with ctx.db.write() as w:
        new_bill = w.get(CustomerBill, bill_id)
        new_bill.state = "validated"
    with ctx.db.write() as w, pytest.raises(Conflict):
        record_payment(
            w, world.system, bill_id, amount_micros=1, method="bank", reference="Z", at=DEC_1
        )


def test_bill_transitions_follow_the_lifecycle(world):
    ctx = world.ctx
    s = shop(world)
    s.device(offering(ctx, "M", [price("recurring", 1_000_000)]), datetime(2026, 10, 1, tzinfo=UTC))
    with ctx.db.write() as w:
        run_bills(w, world.system, "2026-11", at=DEC_1, settings=RUN_SETTINGS)
        bill_id = w.scalar(select(CustomerBill.id))
    with ctx.db.write() as w, pytest.raises(IllegalTransition):
        send_bill(w, world.system, bill_id, at=DEC_1)


def test_top_ups_add_to_a_prepaid_balance_only(world):
    ctx = world.ctx
    pre = shop(world, payment_mode="prepaid", balance=0)
    with ctx.db.write() as w:
        top_up(
            w,
            world.system,
            pre.account_id,
            amount_micros=5_000_000,
            method="alipay",
            reference="A1",
            at=DEC_1,
        )
    with ctx.db.write() as w:  # the same top-up again: recorded once
        _, new = top_up(
            w,
            world.system,
            pre.account_id,
            amount_micros=5_000_000,
            method="alipay",
            reference="A1",
            at=DEC_1,
        )
    assert new is False
    with ctx.db.read() as r:
        assert r.get(BillingAccount, pre.account_id).balance_micros == 5_000_000
    post = shop(world, uscc="91310115MA1K3BTP2B")
    with ctx.db.write() as w, pytest.raises(Conflict):
        top_up(
            w,
            world.system,
            post.account_id,
            amount_micros=1,
            method="bank",
            reference="B",
            at=DEC_1,
        )


def test_a_prepaid_bill_is_paid_from_the_balance_when_sent(world):
    ctx = world.ctx
    s, bill_id = _sent_bill(world, payment_mode="prepaid", balance=200_000_000)
    bill = _bill(ctx, bill_id)
    assert (bill.state, bill.paid_micros) == ("settled", bill.total_micros)
    with ctx.db.read() as r:
        # the usage (¥0.01) was debited when rated; the rest when the bill was sent
        assert r.get(BillingAccount, s.account_id).balance_micros == 200_000_000 - bill.total_micros
        pay = r.scalar(select(Payment).where(Payment.bill_id == bill_id))
        assert pay.method == "prepaid-balance" and pay.amount_micros == bill.total_micros


def test_a_prepaid_bill_that_empties_the_balance_stops_the_service(world):
    ctx = world.ctx
    s, _ = _sent_bill(world, payment_mode="prepaid", balance=50_000_000, stop_at_zero_balance=True)
    with ctx.db.read() as r:
        assert r.get(BillingAccount, s.account_id).balance_micros < 0
        assert {x.status for x in r.scalars(select(Subscription))} == {"suspended"}


@pytest.mark.parametrize(
    ("method", "reference", "field"),
    [
        ("bank\x1b[2J", "T1", "method"),
        ("bank \u202eknab", "T1", "method"),
        ("bank", "T\n1", "reference"),
        ("bank", "T-\u202e1", "reference"),
    ],
)
def test_payment_method_and_reference_are_one_line_of_plain_text(world, method, reference, field):
    """Both are listed with the bill and the account and audited; an escape, line break or
    directional override would garble or reorder them. Nothing is recorded."""
    ctx = world.ctx
    _, bill_id = _sent_bill(world)
    pre = shop(world, uscc="91310115MA1K3BTP2B", payment_mode="prepaid", balance=0)
    kw = {"amount_micros": 1_000_000, "method": method, "reference": reference, "at": DEC_1}
    with pytest.raises(InvalidInput) as paid, ctx.db.write() as w:
        record_payment(w, world.system, bill_id, **kw)
    with pytest.raises(InvalidInput) as topped, ctx.db.write() as w:
        top_up(w, world.system, pre.account_id, **kw)
    assert paid.value.extensions["field"] == topped.value.extensions["field"] == field
    with ctx.db.read() as r:
        assert r.scalars(select(Payment)).all() == []
        assert r.get(BillingAccount, pre.account_id).balance_micros == 0


def test_a_chinese_method_is_recorded_trimmed(world):
    ctx = world.ctx
    _, bill_id = _sent_bill(world)
    with ctx.db.write() as w:
        payment, _ = record_payment(
            w,
            world.system,
            bill_id,
            amount_micros=1_000_000,
            method=" 银行转账 ",
            reference="工行-42",
            at=DEC_1,
        )
        assert (payment.method, payment.reference) == ("银行转账", "工行-42")
