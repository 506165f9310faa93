"""Adjustments: a credit or charge line on a bill not yet validated, VAT and total worked out
again as the run works them out, refused once the bill is validated or when it would owe the
customer money; on a prepaid bill a credit goes back to the balance."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from satiot.bss.bill_adjustments import adjust_bill
from satiot.bss.invoice_pdf import Issuer, render_invoice
from satiot.bss.invoices import hold_bill, lines_of, send_bill, validate_bill
from satiot.bss.models import BillingAccount, CustomerBill, Subscription
from satiot.bss.payments import record_payment
from satiot.core.errors import Conflict, InvalidInput
from satiot.core.models import AuditEntry
from tests.bss.billing_world import DEC_1, november_bill


def _adjust(world, bill_id, amount: int, reason: str = "Credit for the outage of 12 November"):  # type: ignore[no-untyped-def]
    with world.ctx.db.write() as w:
        return adjust_bill(w, world.system, bill_id, amount_micros=amount, reason=reason, at=DEC_1)


def _bill(world, bill_id) -> CustomerBill:  # type: ignore[no-untyped-def]
    with world.ctx.db.read() as r:
        return r.get(CustomerBill, bill_id)


def test_a_credit_line_lowers_vat_and_total_as_the_run_would(world):
    _, bill_id = november_bill(world)
    assert _bill(world, bill_id).total_micros == 106_010_000
    done = _adjust(world, bill_id, -50_000_000, "  Credit for the\noutage of 12 November ")
    assert (done.line.kind, done.line.amount_micros) == ("adjustment", -50_000_000)
    assert done.line.description == "Credit for the outage of 12 November"  # one line of text
    bill = _bill(world, bill_id)
    # subtotal ¥50.01; VAT 6 % = ¥3.0006 → ¥3.00; total ¥53.01
    assert (bill.adjustment_micros, bill.subtotal_micros) == (-50_000_000, 50_010_000)
    assert (bill.tax_micros, bill.total_micros) == (3_000_000, 53_010_000)
    _adjust(world, bill_id, 12_340_000, "Site survey agreed by letter")  # a charge
    bill = _bill(world, bill_id)
    assert (bill.subtotal_micros, bill.tax_micros) == (62_350_000, 3_740_000)  # 3.741 → 3.74
    assert bill.total_micros == 66_090_000
    with world.ctx.db.read() as r:
        kinds = [(ln.kind, ln.amount_micros) for ln in lines_of(r, bill_id)]
        assert kinds[-2:] == [("adjustment", -50_000_000), ("adjustment", 12_340_000)]
        assert sum(a for _, a in kinds) == bill.subtotal_micros
        audit = r.scalars(select(AuditEntry).where(AuditEntry.action == "bill.adjusted")).all()
    assert [a.reason for a in audit] == [
        "Credit for the outage of 12 November",
        "Site survey agreed by letter",
    ]
    assert audit[0].before["total_micros"] == 106_010_000
    assert audit[0].after["total_micros"] == 53_010_000


def test_a_held_bill_is_adjusted_and_a_validated_one_is_not(world):
    _, bill_id = november_bill(world)
    with world.ctx.db.write() as w:
        hold_bill(w, world.system, bill_id, at=DEC_1, reason="customer disputes the fee")
    _adjust(world, bill_id, -10_000_000)
    with world.ctx.db.write() as w:
        hold_bill(w, world.system, bill_id, at=DEC_1, reason="agreed")
        validate_bill(w, world.system, bill_id, at=DEC_1)
    before = _bill(world, bill_id).total_micros
    with pytest.raises(Conflict, match="validated"):
        _adjust(world, bill_id, -1_000_000)
    assert _bill(world, bill_id).total_micros == before


@pytest.mark.parametrize(
    ("amount", "reason", "field", "message"),
    [
        (0, "nothing", "amount", "changes nothing"),
        (-1, "a micro-yuan", "amount", "two decimals"),
        (-100_020_000, "more than the subtotal", "amount", "more than the bill's subtotal"),
        (10**16, "a typo", "amount", "beyond"),
        (-1_000_000, " \n ", "reason", "say why"),
        (-1_000_000, "x" * 301, "reason", "at most 300"),
        (-1_000_000, "Credit \u202egnissim", "reason", "bidirectional control"),
        (-1_000_000, "Credit \x1b[2J", "reason", "control character"),
    ],
)
def test_bad_adjustments_are_refused_and_change_nothing(world, amount, reason, field, message):
    _, bill_id = november_bill(world)
    with pytest.raises(InvalidInput, match=message) as refused:
        _adjust(world, bill_id, amount, reason)
    assert refused.value.extensions["field"] == field
    bill = _bill(world, bill_id)
    assert (bill.adjustment_micros, bill.total_micros) == (0, 106_010_000)
    with world.ctx.db.read() as r:
        assert [ln.kind for ln in lines_of(r, bill_id)] == ["recurring", "usage"]


def test_a_credit_of_the_whole_subtotal_leaves_nothing_to_pay(world):
    _, bill_id = november_bill(world)
    _adjust(world, bill_id, -100_010_000, "Waived: first month of the trial")
    bill = _bill(world, bill_id)
    assert (bill.subtotal_micros, bill.tax_micros, bill.total_micros) == (0, 0, 0)


def test_the_invoice_pdf_carries_the_adjustment_line(world):
    _, bill_id = november_bill(world)
    _adjust(world, bill_id, -50_000_000, "Outage credit 故障补偿")
    with world.ctx.db.read() as r:
        pdf = render_invoice(r, bill_id, Issuer("Op", "91110000000000000X", "Pay", "Asia/Shanghai"))
    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages).replace("\n", " ")
    for expected in ("调整 Adjustment", "Outage credit 故障补偿", "1 项 item", "-¥50.00"):
        assert expected in text, expected
    assert "¥50.01" in text and "¥53.01" in text  # subtotal and total after the credit


def test_an_adjusted_bill_is_paid_to_its_new_total(world):
    _, bill_id = november_bill(world)
    _adjust(world, bill_id, -50_000_000)
    with world.ctx.db.write() as w:
        validate_bill(w, world.system, bill_id, at=DEC_1)
        send_bill(w, world.system, bill_id, at=DEC_1)
    # the old total is more than is outstanding
    with pytest.raises(InvalidInput), world.ctx.db.write() as w:
        record_payment(
            w, world.system, bill_id, amount_micros=106_010_000, method="bank", reference="T0",
            at=DEC_1,
        )  # fmt: skip
    with world.ctx.db.write() as w:
        record_payment(
            w, world.system, bill_id, amount_micros=53_010_000, method="bank", reference="T1",
            at=DEC_1,
        )  # fmt: skip
    assert _bill(world, bill_id).state == "settled"


def test_a_prepaid_credit_beyond_the_rest_returns_to_the_balance_and_restarts_service(world):
    # ¥0.005 in the balance: the usage (¥0.01, debited as rated) empties it and the contract
    # stops the service at zero.
    s, bill_id = november_bill(
        world, payment_mode="prepaid", balance=5_000, stop_at_zero_balance=True
    )
    with world.ctx.db.read() as r:
        assert r.get(BillingAccount, s.account_id).balance_micros == -5_000
        assert {x.status for x in r.scalars(select(Subscription))} == {"suspended"}
    # The rest of the bill is ¥100 + VAT; a credit of ¥100.01 waives the usage too, so the
    # ¥0.01 debited for it comes back when the bill is sent, and the service with it.
    _adjust(world, bill_id, -100_010_000, "Waived")
    with world.ctx.db.write() as w:
        validate_bill(w, world.system, bill_id, at=DEC_1)
        send_bill(w, world.system, bill_id, at=DEC_1)
    with world.ctx.db.read() as r:
        assert r.get(BillingAccount, s.account_id).balance_micros == 5_000
        assert r.get(CustomerBill, bill_id).state == "settled"
        assert {x.status for x in r.scalars(select(Subscription))} == {"active"}
