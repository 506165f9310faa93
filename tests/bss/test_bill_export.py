"""The bills export: one line per invoice with its figures as a ledger books them, credits below
zero, in chunks of fixed cost, only what the reader may see."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from sqlalchemy import select
from stdnum.cn import uscc

from satiot.bss.bill_adjustments import adjust_bill
from satiot.bss.bill_export import COLUMNS, export_bills, file_name
from satiot.bss.billing import RunSettings, run_bills
from satiot.bss.models import CustomerBill
from satiot.core.auth.tenancy import scope_session
from tests.bss.billing_world import offering, price, rate_all, shop, uplink
from tests.performance.test_query_counts import count_queries

SETTINGS = RunSettings(600, "SAT", 30, "Asia/Shanghai")
DEC_1 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def _read(data: bytes) -> list[dict[str, str]]:
    assert data.startswith(b"\xef\xbb\xbf"), "Excel reads UTF-8 by its byte-order mark"
    return list(csv.DictReader(io.StringIO(data[3:].decode(), newline="")))


def _billed(world, customers: int):  # type: ignore[no-untyped-def]
    """November billed for ``customers`` shops of one device each (¥100 + ¥0.10 of usage)."""
    ctx = world.ctx
    off = offering(ctx, "Monthly", [price("recurring", 100_000_000), price("per-message", 10_000)])
    shops = []
    for n in range(customers):
        name = '=HYPERLINK("http://evil.example")' if n == 1 else f"示例物联 {n}"
        s = shop(world, uscc=_uscc(n), name=name)
        sub = s.device(off, datetime(2026, 10, 1, tzinfo=UTC))
        for i in range(10):
            uplink(ctx, sub, 10, datetime(2026, 11, 5, i, tzinfo=UTC))
        shops.append(s)
    rate_all(ctx)
    with ctx.db.write() as w:
        run_bills(w, world.system, "2026-11", at=DEC_1, settings=SETTINGS)
    return shops


def _uscc(n: int) -> str:
    """The n-th of a series of valid Unified Social Credit Codes."""
    body = f"91110108MA01AB{n:03d}"
    return body + uscc.calc_check_digit(body)


def _export(ctx, tenant=None, **kw) -> bytes:  # type: ignore[no-untyped-def]
    with ctx.db.read() as s:
        if tenant is not None:
            scope_session(s, tenant)
        return b"".join(export_bills(s, **kw))


def test_each_line_books_a_bill_with_its_credit(world):
    ctx = world.ctx
    first, _ = _billed(world, 2)
    with ctx.db.write() as w:
        bill_id = w.scalar(
            select(CustomerBill.id).where(CustomerBill.billing_account_id == first.account_id)
        )
        adjust_bill(w, world.system, bill_id, amount_micros=-20_000_000, reason="Outage", at=DEC_1)
    data = _export(ctx, where=[CustomerBill.period == "2026-11"])
    assert data.splitlines()[0] == b"\xef\xbb\xbf" + ",".join(COLUMNS).encode()
    lines = {r["customer"]: r for r in _read(data)}
    mine = lines["示例物联 0"]
    assert (mine["number"], mine["period"], mine["state"]) == ("SAT2026-00000001", "2026-11", "new")
    assert mine["customer_credit_code"] == _uscc(0)
    assert (mine["issued_on"], mine["due_on"]) == ("2026-12-01", "2026-12-31")
    assert (mine["recurring_yuan"], mine["usage_yuan"], mine["one_time_yuan"]) == (
        "100.00",
        "0.10",
        "0.00",
    )
    # ¥100.10 - ¥20 = ¥80.10; VAT 6 % = ¥4.806 → ¥4.81; total ¥84.91, all of it due
    assert (mine["adjustments_yuan"], mine["subtotal_yuan"]) == ("-20.00", "80.10")
    assert (mine["vat_rate_pct"], mine["vat_yuan"], mine["total_yuan"]) == ("6", "4.81", "84.91")
    assert (mine["paid_yuan"], mine["balance_due_yuan"]) == ("0.00", "84.91")
    theirs = lines['\'=HYPERLINK("http://evil.example")']  # a spreadsheet must not run it
    assert theirs["adjustments_yuan"] == "0.00" and theirs["total_yuan"] == "106.11"
    assert _read(_export(ctx, where=[CustomerBill.period == "2026-10"])) == []
    assert file_name("2026-11", DEC_1) == "satiot-bills-2026-11.csv"
    assert file_name(None, DEC_1) == "satiot-bills-20261201.csv"


def test_a_tenant_sees_its_own_bills_in_chunks_of_fixed_cost(world):
    ctx = world.ctx
    shops = _billed(world, 5)
    counts, told = [], []
    for chunk in (2, 5):
        with count_queries(ctx.db.engine) as seen:
            lines = _read(_export(ctx, chunk=chunk, progress=told.append))
        assert len(lines) == 5
        counts.append(len(seen))
    # one statement a chunk, account and customer included (and one for the empty chunk
    # after 5 = 1 x 5)
    assert counts == [3, 2], counts
    assert told == [2, 2, 1, 5]
    (own,) = _read(_export(ctx, shops[2].tenant.id))
    assert own["customer"] == "示例物联 2"
