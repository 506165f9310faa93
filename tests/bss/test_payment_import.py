"""Payments imported from a bank statement (CSV): every line checked and every payment tried
before any is kept; a bad file is refused whole with each bad line named; the same file again
records nothing twice."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from satiot.bss.invoices import send_bill, validate_bill
from satiot.bss.models import CustomerBill, Payment
from satiot.bss.payment_import import (
    PaymentImportRejected,
    import_payments,
    parse_payments,
    read_payments,
    template,
)
from satiot.core.models import AuditEntry
from tests.bss.billing_world import DEC_1, november_bill

TZ = "Asia/Shanghai"
TODAY = date(2026, 12, 1)


def _sent(world, **kw):  # type: ignore[no-untyped-def]
    """A sent November bill of ¥106.01 (a new customer each call): its number and id."""
    _s, bill_id = november_bill(world, **kw)
    with world.ctx.db.write() as w:
        validate_bill(w, world.system, bill_id, at=DEC_1)
        bill = send_bill(w, world.system, bill_id, at=DEC_1)
        return bill.number, bill_id


def _import(world, text: str):  # type: ignore[no-untyped-def]
    lines = read_payments(text.encode(), encoding="utf-8", at=DEC_1, tz=TZ)
    with world.ctx.db.write() as w:
        return import_payments(w, world.system, lines, at=DEC_1, tz=TZ)


def _rows(exc: pytest.ExceptionInfo[PaymentImportRejected]) -> list[tuple[int, str]]:
    return [(e.line, e.column) for e in exc.value.rows]


def test_a_statement_settles_and_part_pays_bills_once(world):
    number, bill_id = _sent(world)
    statement = (
        "\ufeffReference,Bill,Amount,Received_on,Method\r\n"
        f"CMB-001,{number},100.00,2026-11-30,bank-transfer\r\n"
        f"CMB-002,{number.lower()},6.01,,\r\n"
    )
    done = _import(world, statement)
    assert (done.recorded, done.already, done.amount_micros, done.settled) == (
        2, 0, 106_010_000, 1,
    )  # fmt: skip
    with world.ctx.db.read() as r:
        bill = r.get(CustomerBill, bill_id)
        assert bill.state == "settled" and bill.due_micros == 0
        first = r.scalar(select(Payment).where(Payment.reference == "CMB-001"))
        # the day the money arrived, at the start of that day in China
        assert first.received_at == datetime(2026, 11, 29, 16, tzinfo=UTC)
        audited = r.scalar(
            select(func.count(AuditEntry.seq)).where(AuditEntry.action == "payment.recorded")
        )
    assert audited == 2
    again = _import(world, statement)  # the same statement again: nothing twice
    assert (again.recorded, again.already, again.amount_micros) == (0, 2, 0)
    with world.ctx.db.read() as r:
        assert r.scalar(select(func.count(Payment.id))) == 2


def test_any_bad_line_refuses_the_file_and_names_every_one(world):
    number, bill_id = _sent(world)
    statement = (
        "bill,amount,reference\n"
        f"{number},10.00,OK-1\n"  # fine on its own
        "SAT2026-99999999,1.00,X-1\n"  # no such bill
        f"{number},500.00,X-2\n"  # more than owed
        f"{number},1.001,X-3\n"  # three decimals
        f"{number},1.00,OK-1\n"  # reference twice in the file
        f"{number},1.00\n"  # a field short (line 7)
    )
    with pytest.raises(PaymentImportRejected) as exc:
        _import(world, statement)
    # every bad line at once: those the bills refuse and those the file gets wrong
    assert _rows(exc) == [(3, "bill"), (4, "amount"), (5, "amount"), (6, "reference"), (7, "")]
    assert "5 lines cannot be recorded; nothing was recorded" in exc.value.detail
    with world.ctx.db.read() as r:  # line 2 was recorded, then rolled back with the rest
        assert r.scalar(select(func.count(Payment.id))) == 0
        assert r.get(CustomerBill, bill_id).paid_micros == 0


def test_bills_that_take_no_payment_and_references_of_other_payments_are_named(world):
    number, _ = _sent(world)
    _new, unsent = november_bill(world, uscc="91310115MA1K3BTP2B", name="Unsent Co")
    with world.ctx.db.read() as r:
        unsent_number = r.get(CustomerBill, unsent).number
    _import(world, f"bill,amount,reference\n{number},10.00,R-1\n")
    with pytest.raises(PaymentImportRejected) as exc:
        _import(
            world,
            f"bill,amount,reference\n{unsent_number},1.00,R-9\n{number},20.00,R-1\n",
        )
    reasons = [e.reason for e in exc.value.rows]
    assert "payments are taken on sent bills" in reasons[0]
    assert "already records another payment" in reasons[1]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("", (1, "")),
        ("bill,amount\n", (1, "reference")),
        ("bill,amount,reference,colour\n", (1, "colour")),
        ("bill,amount,reference,amount\n", (1, "amount")),
        ("bill,amount,reference\n", (2, "")),
        ("bill,amount,reference\n,1.00,R\n", (2, "bill")),
        ("bill,amount,reference\nSAT1,0,R\n", (2, "amount")),
        ("bill,amount,reference\nSAT1,1.00,R\x1b[31m\n", (2, "reference")),
        ("bill,amount,reference,received_on\nSAT1,1.00,R,2026-12-02\n", (2, "received_on")),
        ("bill,amount,reference,received_on\nSAT1,1.00,R,30/11/2026\n", (2, "received_on")),
        ('bill,amount,reference\nSAT1,"1.00,R\n', (2, "")),
    ],
)
def test_malformed_files_are_refused_with_the_line_and_column(text, where):
    try:
        errors = parse_payments(text, today=TODAY).errors
    except PaymentImportRejected as exc:  # the whole file: no header, no lines
        errors = exc.rows
    assert (errors[0].line, errors[0].column) == where and len(errors) == 1


def test_a_workbook_or_utf16_file_is_one_error_and_gb18030_is_read():
    for data in (b"PK\x03\x04rest", "bill,amount,reference\n".encode("utf-16")):
        with pytest.raises(PaymentImportRejected) as exc:
            read_payments(data, encoding="utf-8", at=DEC_1, tz=TZ)
        assert len(exc.value.rows) == 1 and "not CSV text" in exc.value.rows[0].reason
    gbk = "bill,amount,reference,method\nSAT1,1.00,工行-01,银行转账\n".encode("gb18030")
    (line,) = read_payments(gbk, encoding="gb18030", at=DEC_1, tz=TZ).lines
    assert (line.reference, line.method) == ("工行-01", "银行转账")
    assert template().decode("utf-8-sig").strip() == "bill,amount,reference,method,received_on"


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.binary(max_size=400))
def test_any_bytes_are_read_or_refused_never_crash(data):
    try:
        parsed = read_payments(data, encoding="utf-8", at=DEC_1, tz=TZ)
    except PaymentImportRejected as exc:
        assert exc.rows and all(e.line >= 1 and e.reason for e in exc.rows)
    else:
        assert parsed.lines or parsed.errors
        assert all(e.line >= 2 and e.reason for e in parsed.errors)
        assert all(x.amount_micros > 0 and x.reference for x in parsed.lines)
