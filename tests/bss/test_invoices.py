"""Invoice numbers (gap-free under concurrency), the bill lifecycle, and the PDF."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from satiot.bss.billing import RunSettings, run_bills
from satiot.bss.invoice_pdf import Issuer, render_invoice
from satiot.bss.invoices import hold_bill, invoice_series, send_bill, take_numbers, validate_bill
from satiot.bss.models import CustomerBill
from satiot.bss.payments import record_payment
from satiot.core.auth.principal import Principal
from satiot.core.auth.roles import ROLES, Role
from satiot.core.errors import PermissionDenied
from satiot.core.models import AuditEntry, Event
from tests.bss.billing_world import offering, price, rate_all, shop, uplink

SETTINGS = RunSettings(600, "SAT", 30, "Asia/Shanghai")
DEC_1 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
ISSUER = Issuer(
    "卫星物联网运营商（示例）有限公司", "91110000600037341L", "开户行 示例银行 账号 0000 1111"
)


def test_the_series_follows_the_business_year():
    assert invoice_series("SAT", datetime(2026, 12, 31, 16, 30, tzinfo=UTC), "Asia/Shanghai") == (
        "SAT2027"
    )


def test_numbers_have_no_gaps_and_no_repeats_under_concurrency(db):
    """Eight writers take numbers at once; a third of their transactions roll back."""
    taken: list[int] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            for i in range(15):
                try:
                    with db.write() as s:
                        first = take_numbers(s, "TEST2026", 2)
                        if (k + i) % 3 == 0:
                            raise RuntimeError("roll back")
                    with lock:
                        taken.extend([first, first + 1])
                except RuntimeError:
                    pass
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(taken) == list(range(1, len(taken) + 1))


@pytest.fixture
def bill_id(world):
    ctx = world.ctx
    s = shop(world)
    off = offering(
        ctx,
        "天启 Tianqi Basic",
        [
            price("recurring", 12_000_000, name="月功能费 Monthly fee"),
            price("one-time", 5_000_000, name="开通费 Activation"),
            price("per-message", 20_000, name="每条消息 Per message"),
            price("per-byte", 100, name="每字节 Per byte", min_billable_bytes=50),
        ],
    )
    full = s.device(off, datetime(2026, 10, 1, tzinfo=UTC))
    s.device(off, datetime(2026, 11, 15, 16, tzinfo=UTC))
    for i in range(40):
        uplink(ctx, full, 24, datetime(2026, 11, 3, i % 24, tzinfo=UTC))
    rate_all(ctx)
    with ctx.db.write() as w:
        run_bills(w, world.system, "2026-11", at=DEC_1, settings=SETTINGS)
        return w.scalar(select(CustomerBill.id))


def test_the_lifecycle_is_audited_and_announced_to_the_customer(world, bill_id):
    ctx = world.ctx
    billing_clerk = Principal(
        world.operator.id, Role.BILLING, ROLES[Role.BILLING].scopes, None, "clerk", "session"
    )
    noc = Principal(world.operator.id, Role.NOC, ROLES[Role.NOC].scopes, None, "noc", "session")
    with ctx.db.write() as w, pytest.raises(PermissionDenied):
        hold_bill(w, noc, bill_id, at=DEC_1, reason="not mine to hold")
    with ctx.db.write() as w:
        hold_bill(w, billing_clerk, bill_id, at=DEC_1, reason="customer disputes usage")
        hold_bill(w, billing_clerk, bill_id, at=DEC_1, reason="resolved")
        validate_bill(w, billing_clerk, bill_id, at=DEC_1)
        send_bill(w, billing_clerk, bill_id, at=DEC_1)
    with ctx.db.read() as r:
        bill = r.get(CustomerBill, bill_id)
        assert bill.state == "sent"
        actions = list(
            r.scalars(select(AuditEntry.action).where(AuditEntry.target_id == str(bill_id)))
        )
        assert actions == ["bill.onHold", "bill.new", "bill.validated", "bill.sent"]
        sent = r.scalar(select(Event).where(Event.type == "bill.sent"))
        assert sent.tenant_id == bill.tenant_id and sent.payload["number"] == bill.number


def test_the_pdf_carries_what_a_customer_checks(world, bill_id, tmp_path):
    ctx = world.ctx
    with ctx.db.write() as w:
        validate_bill(w, world.system, bill_id, at=DEC_1)
        send_bill(w, world.system, bill_id, at=DEC_1)
        record_payment(
            w,
            world.system,
            bill_id,
            amount_micros=10_000_000,
            method="bank",
            reference="B1",
            at=DEC_1,
        )
    with ctx.db.read() as r:
        pdf = render_invoice(r, bill_id, ISSUER)
        bill = r.get(CustomerBill, bill_id)
    path = tmp_path / "invoice.pdf"
    path.write_bytes(pdf)
    reader = PdfReader(path)
    text = "\n".join(page.extract_text() for page in reader.pages)
    flat = text.replace("\n", " ")
    for expected in (
        "卫星物联网运营商（示例）有限公司",
        "91110000600037341L",
        "北京示例物联科技有限公司",
        "SAT2026-00000001",
        "2026-12-01",
        "2026-12-31",  # due in 30 days
        "2026-11-01",
        "2026-11-30",
        "天启 Tianqi Basic",
        "prorated",
        "40 条 msg",
        "VAT 6%",
        "¥10.00",  # paid so far
        "开户行 示例银行",
    ):
        assert expected in flat, expected
    total = f"¥{bill.total_micros / 1_000_000:,.2f}"
    assert total in flat
