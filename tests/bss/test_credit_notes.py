"""Credit notes: a sent bill is corrected by a numbered note that credits an amount and its
VAT; what is owed falls, a bill owed nothing more is settled, a credit beyond what a postpaid
customer owes is owed back until refunded, a prepaid bill's credit goes back to the balance,
and a bill not yet sent is adjusted, not credited."""

from __future__ import annotations

import csv
import io
import uuid

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from satiot.bss.credit_note_export import COLUMNS, export_notes, note_filters
from satiot.bss.credit_notes import issue_credit_note, notes_of
from satiot.bss.invoice_pdf import Issuer, render_credit_note, render_invoice
from satiot.bss.invoices import send_bill, validate_bill
from satiot.bss.models import BillingAccount, CreditNote, CustomerBill, Payment, Subscription
from satiot.bss.payments import record_payment, record_refund
from satiot.core.errors import Conflict, InvalidInput
from satiot.core.models import AuditEntry, Event
from tests.bss.billing_world import DEC_1, november_bill
from tests.network.delivery_support import deliveries, fan_out, webhook

ISSUER = Issuer("Op", "91110000000000000X", "Pay", "Asia/Shanghai")


def _credit(world, bill_id, amount: int, reason: str = "Outage of 12 November"):  # type: ignore[no-untyped-def]
    with world.ctx.db.write() as w:
        note = issue_credit_note(
            w, world.system, bill_id, amount_micros=amount, reason=reason, at=DEC_1,
            series_prefix="SAT", tz="Asia/Shanghai",
        )  # fmt: skip
        return note.number, note.subtotal_micros, note.tax_micros, note.total_micros


def _bill(world, bill_id) -> CustomerBill:  # type: ignore[no-untyped-def]
    with world.ctx.db.read() as r:
        return r.get(CustomerBill, bill_id)


def _send(world, bill_id) -> None:  # type: ignore[no-untyped-def]
    with world.ctx.db.write() as w:
        validate_bill(w, world.system, bill_id, at=DEC_1)
        send_bill(w, world.system, bill_id, at=DEC_1)


def _pay(world, bill_id, amount: int, reference: str) -> None:  # type: ignore[no-untyped-def]
    with world.ctx.db.write() as w:
        record_payment(
            w, world.system, bill_id, amount_micros=amount, method="bank", reference=reference,
            at=DEC_1,
        )  # fmt: skip


def test_a_credit_lowers_what_is_owed_and_the_rest_is_paid(world):
    _, bill_id = november_bill(world)  # ¥100.01 + 6 % VAT = ¥106.01
    _send(world, bill_id)
    # ¥50.00 before VAT, ¥3.00 VAT: ¥53.00 credited, ¥53.01 still owed
    assert _credit(world, bill_id, 50_000_000, " Outage of\n12 November ") == (
        "SATCN2026-00000001", 50_000_000, 3_000_000, 53_000_000,
    )  # fmt: skip
    bill = _bill(world, bill_id)
    assert (bill.total_micros, bill.credited_micros, bill.due_micros) == (
        106_010_000, 53_000_000, 53_010_000,
    )  # fmt: skip
    assert bill.state == "sent"  # the invoice's own figures stay what was sent
    with pytest.raises(InvalidInput, match=r"more than the ¥53\.01 outstanding"):
        _pay(world, bill_id, 106_010_000, "T0")
    _pay(world, bill_id, 53_010_000, "T1")
    assert _bill(world, bill_id).state == "settled"
    with world.ctx.db.read() as r:
        audit = r.scalars(select(AuditEntry).where(AuditEntry.action == "bill.credited")).one()
        event = r.scalars(select(Event).where(Event.type == "bill.credited")).one()
        assert audit.reason == "Outage of 12 November"  # one line of text
        assert [n.reason for n in notes_of(r, bill_id)] == ["Outage of 12 November"]
    assert (audit.before["total_micros"], audit.after["total_micros"]) == (106_010_000,) * 2
    assert event.payload["credit_note_number"] == "SATCN2026-00000001"
    assert (event.payload["due_micros"], event.tenant_id) == (53_010_000, bill.tenant_id)


def test_notes_that_credit_the_whole_subtotal_give_back_exactly_its_vat_and_settle(world):
    _, bill_id = november_bill(world)
    _send(world, bill_id)
    # VAT of ¥33.33 is ¥1.9998 → ¥2.00; of all ¥100.01, ¥6.0006 → ¥6.00: the second note's
    # VAT is what is left of the bill's (¥4.00), not its own ¥4.0008 → ¥4.00 by chance.
    first = _credit(world, bill_id, 33_330_000, "Outage")
    second = _credit(world, bill_id, 66_680_000, "Waived")
    assert first[1:] == (33_330_000, 2_000_000, 35_330_000)
    assert second == ("SATCN2026-00000002", 66_680_000, 4_000_000, 70_680_000)
    bill = _bill(world, bill_id)
    assert bill.credited_micros == bill.total_micros == 106_010_000
    assert (bill.due_micros, bill.state) == (0, "settled")
    with world.ctx.db.read() as r:
        settled = r.scalars(select(AuditEntry).where(AuditEntry.action == "bill.settled")).one()
    assert settled.reason == "credit note SATCN2026-00000002"


def _nothing_changed(world, bill_id, paid: int = 0) -> None:  # type: ignore[no-untyped-def]
    bill = _bill(world, bill_id)
    assert (bill.credited_micros, bill.paid_micros) == (0, paid)
    with world.ctx.db.read() as r:
        assert r.scalars(select(CreditNote)).all() == []


@pytest.mark.parametrize(
    ("amount", "reason", "field", "message"),
    [
        (0, "nothing", "amount", "above ¥0.00"),
        (-5_000_000, "a charge", "amount", "above ¥0.00"),
        (1, "a micro-yuan", "amount", "two decimals"),
        (100_020_000, "more than was billed", "amount", "the ¥100.01 of the bill's subtotal"),
        (10**16, "a typo", "amount", "beyond"),
        (1_000_000, " \n ", "reason", "say why"),
        (1_000_000, "x" * 301, "reason", "at most 300"),
        (1_000_000, "Credit \u202egnissim", "reason", "bidirectional control"),
    ],
)
def test_bad_credits_are_refused_and_change_nothing(world, amount, reason, field, message):
    _, bill_id = november_bill(world)
    _send(world, bill_id)
    with pytest.raises(InvalidInput, match=message) as refused:
        _credit(world, bill_id, amount, reason)
    assert refused.value.extensions["field"] == field
    _nothing_changed(world, bill_id)
    # the refused note took no number: the first one issued is still 00000001
    assert _credit(world, bill_id, 1_000_000)[0] == "SATCN2026-00000001"


def test_a_bill_not_yet_sent_is_adjusted_not_credited(world):
    _, bill_id = november_bill(world)
    with pytest.raises(Conflict, match="adjust a bill that is not yet validated"):
        _credit(world, bill_id, 1_000_000)
    with world.ctx.db.write() as w:
        validate_bill(w, world.system, bill_id, at=DEC_1)
    with pytest.raises(Conflict, match="is validated"):
        _credit(world, bill_id, 1_000_000)
    _nothing_changed(world, bill_id)


def _refund(world, bill_id, amount: int, reference: str):  # type: ignore[no-untyped-def]
    with world.ctx.db.write() as w:
        refund, new = record_refund(
            w, world.system, bill_id, amount_micros=amount, method="bank-transfer",
            reference=reference, at=DEC_1,
        )  # fmt: skip
        return refund.amount_micros, new


def test_a_postpaid_credit_beyond_what_is_owed_is_owed_back_until_refunded(world):
    _, bill_id = november_bill(world)
    _send(world, bill_id)
    with pytest.raises(Conflict, match="owes the customer nothing"):
        _refund(world, bill_id, 1_000_000, "R0")
    _pay(world, bill_id, 100_000_000, "T1")  # ¥6.01 still owed
    _credit(world, bill_id, 10_000_000)  # ¥10.60 with VAT: ¥4.59 more than was owed
    bill = _bill(world, bill_id)
    assert (bill.due_micros, bill.state) == (-4_590_000, "settled")
    with world.ctx.db.read() as r:
        note_id = r.scalar(select(CreditNote.id))
        printed = [render_invoice(r, bill_id, ISSUER), render_credit_note(r, note_id, ISSUER)]
    for pdf in printed:
        text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
        assert "Owed to you" in text and "¥4.59" in text and "-¥4.59" not in text
    with pytest.raises(InvalidInput, match=r"more than the ¥4\.59 the bill owes the customer"):
        _refund(world, bill_id, 5_000_000, "R1")
    with pytest.raises(Conflict, match="another payment"):  # a payment's reference
        _refund(world, bill_id, 4_590_000, "T1")
    assert _refund(world, bill_id, 4_590_000, "R1") == (-4_590_000, True)
    assert _refund(world, bill_id, 4_590_000, "R1") == (-4_590_000, False)  # a repeat
    bill = _bill(world, bill_id)
    assert (bill.paid_micros, bill.due_micros, bill.state) == (95_410_000, 0, "settled")
    with pytest.raises(Conflict, match="owes the customer nothing"):
        _refund(world, bill_id, 10_000, "R2")
    with world.ctx.db.read() as r:
        paid = r.scalars(select(Payment).where(Payment.bill_id == bill_id)).all()
        audit = r.scalars(select(AuditEntry).where(AuditEntry.action == "bill.refunded")).one()
    assert sum(p.amount_micros for p in paid) == bill.paid_micros
    assert audit.after == {"paid_micros": 95_410_000, "reference": "R1"}


def test_a_prepaid_credit_goes_back_to_the_balance_and_restarts_service(world):
    # ¥0.005 in the balance: the usage (¥0.01, debited as rated) empties it and the contract
    # stops the service at zero; sending the bill debits the rest and settles it.
    s, bill_id = november_bill(
        world, payment_mode="prepaid", balance=5_000, stop_at_zero_balance=True
    )
    _send(world, bill_id)
    with world.ctx.db.read() as r:
        assert r.get(BillingAccount, s.account_id).balance_micros == -106_005_000
    assert _bill(world, bill_id).state == "settled"
    _credit(world, bill_id, 100_010_000, "Waived: first month of the trial")
    bill = _bill(world, bill_id)
    assert (bill.paid_micros, bill.credited_micros, bill.due_micros) == (0, 106_010_000, 0)
    with world.ctx.db.read() as r:
        assert r.get(BillingAccount, s.account_id).balance_micros == 5_000
        assert {x.status for x in r.scalars(select(Subscription))} == {"active"}
        paid = r.scalars(select(Payment).where(Payment.bill_id == bill_id)).all()
        note = r.scalars(select(CreditNote)).one()
    # the bill's payments still add up to what it was paid
    assert sum(p.amount_micros for p in paid) == bill.paid_micros
    assert [p.reference for p in paid if p.amount_micros < 0] == [f"credit:{note.number}"]
    assert note.returned_micros == 106_010_000


def test_the_credit_note_and_the_invoice_print_the_credit(world):
    _, bill_id = november_bill(world)
    _send(world, bill_id)
    number = _credit(world, bill_id, 50_000_000, "Outage credit 故障补偿")[0]
    with world.ctx.db.read() as r:
        note_id = r.scalar(select(CreditNote.id))
        note_pdf = render_credit_note(r, note_id, ISSUER)
        invoice_pdf = render_invoice(r, bill_id, ISSUER)
        with pytest.raises(Exception, match="no credit note"):
            render_credit_note(r, uuid.uuid4(), ISSUER)

    def text(pdf: bytes) -> str:
        pages = PdfReader(io.BytesIO(pdf)).pages
        return " ".join(p.extract_text() for p in pages).replace("\n", " ")

    note_text = text(note_pdf)
    bill_number = _bill(world, bill_id).number
    for expected in (
        "CREDIT NOTE", number, bill_number, "Outage credit 故障补偿", "-¥50.00", "-¥3.00",
        "-¥53.00", "¥53.01",
    ):  # fmt: skip
        assert expected in note_text, expected
    invoice_text = text(invoice_pdf)
    for expected in ("红字冲减 Credit notes", "-¥53.00", "Balance due", "¥53.01"):
        assert expected in invoice_text, expected


def test_the_customers_integrations_are_told_of_the_note_and_the_refund(world):
    s, bill_id = november_bill(world)
    hook = webhook(world.ctx, world, s.tenant.id, "https://erp.example/hook")
    _send(world, bill_id)
    _pay(world, bill_id, 106_010_000, "T1")
    number = _credit(world, bill_id, 10_000_000)[0]
    _refund(world, bill_id, 10_600_000, "R1")
    fan_out(world.ctx)
    bodies = {d.event_type: d.body for d in deliveries(world.ctx, hook)}
    assert bodies["bill.credited"]["credit_note_number"] == number
    assert bodies["bill.credited"]["due_micros"] == -10_600_000
    assert (bodies["bill.refunded"]["reference"], bodies["bill.refunded"]["due_micros"]) == (
        "R1", 0,
    )  # fmt: skip


def test_the_register_lists_a_months_notes_for_the_ledger(world):
    _, bill_id = november_bill(world)
    _send(world, bill_id)
    number = _credit(world, bill_id, 50_000_000, '=HYPERLINK("x") outage')[0]
    with world.ctx.db.read() as r:
        december = note_filters(month="2026-12", account_id=None, tz="Asia/Shanghai")
        text = b"".join(export_notes(r, december)).decode("utf-8-sig")
        november = note_filters(month="2026-11", account_id=None, tz="Asia/Shanghai")
        empty = b"".join(export_notes(r, november)).decode("utf-8-sig")
    (line,) = csv.DictReader(io.StringIO(text, newline=""))
    assert (line["number"], line["issued_on"], line["bill_period"]) == (
        number, "2026-12-01", "2026-11",
    )  # fmt: skip
    assert (line["credited_before_vat_yuan"], line["vat_yuan"], line["total_credited_yuan"]) == (
        "50.00", "3.00", "53.00",
    )  # fmt: skip
    assert line["reason"].startswith("'=HYPERLINK")  # not run as a formula
    assert empty.splitlines() == [",".join(COLUMNS)]
    with pytest.raises(InvalidInput, match="YYYY-MM"):
        note_filters(month="2026-13", account_id=None, tz="Asia/Shanghai")
