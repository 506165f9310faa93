"""A billing account's statement: invoices, credit notes, payments and refunds in date order,
the balance after each, an opening balance for what came before, and a closing balance equal
to what the account's bills still ask for."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

import pytest

from satiot.bss.account_statement import export_statement, statement
from satiot.bss.credit_notes import issue_credit_note
from satiot.bss.invoices import send_bill, validate_bill
from satiot.bss.models import CustomerBill
from satiot.bss.payments import record_payment, record_refund
from satiot.core.errors import InvalidInput, NotFound
from tests.bss.billing_world import DEC_1, november_bill

TZ = "Asia/Shanghai"


def _history(world):  # type: ignore[no-untyped-def]
    """November's ¥106.01 bill sent on 1 December, ¥50 paid on the 5th and ¥56.01 on the 10th,
    a ¥10 credit note (¥10.60 with VAT) on the 12th and its refund on the 15th."""
    shop, bill_id = november_bill(world)
    at = DEC_1
    with world.ctx.db.write() as w:
        validate_bill(w, world.system, bill_id, at=at)
        send_bill(w, world.system, bill_id, at=at)
        record_payment(w, world.system, bill_id, amount_micros=50_000_000, method="bank",
                       reference="P-1", at=at + timedelta(days=4))  # fmt: skip
        record_payment(w, world.system, bill_id, amount_micros=56_010_000, method="bank",
                       reference="P-2", at=at + timedelta(days=9))  # fmt: skip
        issue_credit_note(w, world.system, bill_id, amount_micros=10_000_000, reason="Outage",
                          at=at + timedelta(days=11), series_prefix="SAT", tz=TZ)  # fmt: skip
        record_refund(w, world.system, bill_id, amount_micros=10_600_000, method="bank",
                      reference="R-1", at=at + timedelta(days=14))  # fmt: skip
    return shop, bill_id


def test_every_movement_in_order_with_the_balance_after_each(world):
    shop, bill_id = _history(world)
    with world.ctx.db.read() as r:
        s = statement(r, shop.account_id, start=None, end=date(2026, 12, 31), tz=TZ)
        due = r.get(CustomerBill, bill_id).due_micros
    rows = [(e.kind, e.document, e.amount_micros, e.balance_micros) for e in s.entries]
    assert rows == [
        ("invoice", "SAT2026-00000001", 106_010_000, 106_010_000),
        ("payment", "P-1", -50_000_000, 56_010_000),
        ("payment", "P-2", -56_010_000, 0),
        ("credit-note", "SATCN2026-00000001", -10_600_000, -10_600_000),
        ("refund", "R-1", 10_600_000, 0),
    ]
    assert (s.opening_micros, s.closing_micros) == (0, 0) and s.closing_micros == due


def test_a_later_window_opens_with_what_came_before(world):
    shop, _ = _history(world)
    with world.ctx.db.read() as r:
        s = statement(r, shop.account_id, start=date(2026, 12, 8), end=date(2026, 12, 12), tz=TZ)
    assert s.opening_micros == 56_010_000  # the invoice less the first payment
    assert [e.kind for e in s.entries] == ["payment", "credit-note"]
    assert s.closing_micros == -10_600_000  # owed to the customer until the refund
    text = b"".join(export_statement(s, TZ)).decode("utf-8-sig")
    lines = list(csv.reader(io.StringIO(text)))
    assert lines[0][:3] == ["date", "kind", "document"]
    assert lines[1][1] == "opening" and lines[1][-1] == "56.01" and lines[1][-2] == ""
    assert lines[2] == [
        "2026-12-10",
        "payment",
        "P-2",
        "SAT2026-00000001",
        "bank",
        "-56.01",
        "0.00",
    ]
    assert lines[-1][1] == "closing" and lines[-1][-1] == "-10.60"


def test_unsent_bills_count_for_nothing_and_bad_windows_are_refused(world):
    shop, bill_id = november_bill(world)  # still new: the customer has not seen it
    with world.ctx.db.read() as r:
        s = statement(r, shop.account_id, start=None, end=date(2026, 12, 31), tz=TZ)
        assert s.entries == [] and s.closing_micros == 0
        with pytest.raises(InvalidInput, match="starts"):
            statement(r, shop.account_id, start=date(2026, 12, 2), end=date(2026, 12, 1), tz=TZ)
        with pytest.raises(NotFound):
            statement(r, bill_id, start=None, end=date(2026, 12, 1), tz=TZ)


def test_a_formula_in_a_reason_is_written_as_text(world):
    shop, bill_id = november_bill(world)
    with world.ctx.db.write() as w:
        validate_bill(w, world.system, bill_id, at=DEC_1)
        send_bill(w, world.system, bill_id, at=DEC_1)
        issue_credit_note(w, world.system, bill_id, amount_micros=1_000_000,
                          reason='=HYPERLINK("x")', at=DEC_1, series_prefix="SAT",
                          tz=TZ)  # fmt: skip
        s = statement(w, shop.account_id, start=None, end=date(2026, 12, 1), tz=TZ)
    text = b"".join(export_statement(s, TZ)).decode("utf-8-sig")
    assert "'=HYPERLINK" in text
