"""The Payments page: payments, refunds and top-ups newest first, by kind and by the business
month received, with the count and net total of what the filter keeps; customers see their
own."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from satiot.api.context import AppContext
from satiot.bss.models import CustomerBill
from satiot.bss.payments import record_payment, top_up
from satiot.core.auth.roles import Role
from satiot.web.views import payments as payments_view
from tests.bss.billing_world import USCCS, sent_bill_for, shop
from tests.factories import World
from tests.web.console_helpers import signed_in


def _rows(html: str) -> int:
    return html.count('class="payment-row"')


def test_payments_by_kind_and_month_and_customers_their_own(
    client: TestClient, ctx: AppContext, world: World, monkeypatch: pytest.MonkeyPatch
):
    paying = shop(world)
    found = sent_bill_for(world, paying.tenant.id)  # October's bill, ¥1.06 with VAT
    prepaid = shop(world, payment_mode="prepaid", uscc=USCCS[1], name="Prepaid Co")
    with ctx.db.write() as s:
        bill = s.get(CustomerBill, uuid.UUID(found["bill_id"]))
        assert bill is not None
        number = bill.number
        record_payment(
            s, world.system, uuid.UUID(found["bill_id"]), amount_micros=500_000,
            method="bank-transfer", reference="CMB-P1", at=ctx.clock.now(),
            received_at=datetime(2026, 11, 30, 17, tzinfo=UTC),  # 1 December in China
        )  # fmt: skip
        top_up(
            s, world.system, prepaid.account_id, amount_micros=200_000_000, method="alipay",
            reference="ALI-P1", at=datetime(2026, 11, 20, tzinfo=UTC),
        )  # fmt: skip
    world.user(world.operator, Role.BILLING, "clerk")
    signed_in(client, "clerk")
    html = client.get("/payments").text
    assert _rows(html) == 2 and 'href="/payments"' in html  # in the navigation too
    assert "2 entries, ¥200.50 net" in html and 'id="payments-import"' in html
    assert "CMB-P1" in html and "ALI-P1" in html and 'badge-top-up">top-up<' in html
    top_ups = client.get("/payments?kind=top-up").text
    assert _rows(top_ups) == 1 and "ALI-P1" in top_ups
    assert '<option value="top-up" selected>' in top_ups
    december = client.get("/payments?period=2026-12").text  # China's month, not UTC's
    assert _rows(december) == 1 and "CMB-P1" in december and "received in 2026-12" in december
    november = client.get("/payments?period=2026-11&kind=payment").text
    assert _rows(november) == 0 and "No payment of this kind received in 2026-11" in november
    # the same filter as a spreadsheet, oldest first, China's time, the top-up with no invoice
    assert 'href="/payments/export.csv?period=2026-12"' in december
    sheet = client.get("/payments/export.csv?period=2026-12")
    assert (
        sheet.status_code == 200
        and "satiot-payments-2026-12.csv" in sheet.headers["content-disposition"]
    )
    lines = sheet.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("received_at,kind,amount_yuan,method,reference,bill_number,")
    assert [line.split(",")[:6] for line in lines[1:]] == [
        ["2026-12-01 01:00:00", "payment", "0.50", "bank-transfer", "CMB-P1", number]
    ]
    everything = client.get("/payments/export.csv").content.decode("utf-8-sig").splitlines()
    assert [line.split(",")[1] for line in everything[1:]] == ["payment", "top-up"]
    assert everything[2].split(",")[5:7] == ["", ""]  # a top-up has no invoice
    wrong = client.get("/payments?period=2026-13").text
    assert "flash-error" in wrong and _rows(wrong) == 2
    assert _rows(client.get("/payments?kind=cash").text) == 2  # an unknown kind: every kind

    monkeypatch.setattr(payments_view, "PAGE", 1)
    first = client.get("/payments").text
    assert _rows(first) == 1 and 'id="payments-next"' in first
    older = first.split('id="payments-next"')[0].rsplit('href="', 1)[1].split('"')[0]
    second = client.get(older.replace("&amp;", "&")).text
    assert _rows(second) == 1 and "CMB-P1" in second and 'id="payments-next"' not in second

    client.cookies.clear()
    world.user(prepaid.tenant, Role.CUSTOMER_ADMIN, "prepaid-admin")
    signed_in(client, "prepaid-admin")
    mine = client.get("/payments").text
    assert _rows(mine) == 1 and "ALI-P1" in mine and "CMB-P1" not in mine
    assert 'id="payments-import"' not in mine
