"""The console's payment import: billing staff reach it from the Invoices page; a bad statement
shows every bad line and records nothing; a good one is recorded once however often the form is
sent; customers cannot import."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from satiot.api.context import AppContext
from satiot.bss.models import CustomerBill, Payment
from satiot.core.auth.roles import Role
from tests.factories import World
from tests.web.console_helpers import signed_in
from tests.web.test_billing_console_pages import _sent_bill, _two_shops


def _as(client: TestClient, username: str) -> str:
    client.cookies.clear()
    return signed_in(client, username)


def _upload(client: TestClient, csrf: str, data: bytes, **form: str):  # type: ignore[no-untyped-def]
    return client.post(
        "/payments/import",
        data={"csrf_token": csrf, **form},
        files={"file": ("statement.csv", data, "text/csv")},
        follow_redirects=False,
    )


def _payments(ctx: AppContext) -> int:
    with ctx.db.read() as s:
        return int(
            s.scalar(select(func.count(Payment.id)).where(Payment.method != "prepaid-balance")) or 0
        )


def test_a_statement_is_checked_whole_and_recorded_once(
    client: TestClient, ctx: AppContext, world: World
):
    _mine, theirs = _two_shops(ctx, world)
    bill_id, number, total = _sent_bill(ctx, world, theirs)
    world.user(world.operator, Role.BILLING, "clerk")
    csrf = _as(client, "clerk")
    assert 'href="/payments/import"' in client.get("/invoices").text
    page = client.get("/payments/import").text
    assert 'id="payment-upload"' in page and 'href="/payments/import/template.csv"' in page

    bad = f"bill,amount,reference\n{number},1.00,B-1\n{number},9999.00,B-2\nSAT2026-09,1.00,B-3\n"
    r = _upload(client, csrf, bad.encode())
    assert r.status_code == 422
    assert re.findall(r'<tr class="import-error"><td class="num">(\d+)</td>', r.text) == ["3", "4"]
    assert "2 lines cannot be recorded; nothing was recorded." in r.text
    assert _payments(ctx) == 0

    yuan = f"{total / 1_000_000:.2f}"
    good = f"bill,amount,reference,received_on\n{number},{yuan},B-1,2026-11-30\n".encode()
    key = re.search(r'name="form_key" value="([^"]+)"', client.get("/payments/import").text)
    assert key is not None
    r = _upload(client, csrf, good, form_key=key[1])
    assert r.status_code == 303 and r.headers["location"] == "/invoices"
    html = client.get("/invoices").text
    assert f"Payments imported: 1 payment recorded (¥{yuan}); 1 bill now settled." in html
    again = _upload(client, csrf, good, form_key=key[1])  # the same form sent twice
    assert again.status_code == 303 and "sent already" in client.get("/invoices").text
    fresh = _upload(client, csrf, good)  # the same statement in a new form
    assert fresh.status_code == 303
    shown = client.get("/invoices").text
    assert "0 payments recorded (¥0.00), 1 recorded before." in shown, re.findall(
        r"flash[^>]*>([^<]*)<", shown
    )
    assert _payments(ctx) == 1
    with ctx.db.read() as s:
        assert s.get(CustomerBill, bill_id).state == "settled"


def test_customers_cannot_import_payments(client: TestClient, ctx: AppContext, world: World):
    mine, _ = _two_shops(ctx, world)
    world.user(mine.tenant, Role.CUSTOMER_ADMIN, "cust")
    csrf = _as(client, "cust")
    assert 'href="/payments/import"' not in client.get("/invoices").text
    assert client.get("/payments/import").status_code == 403
    r = _upload(client, csrf, b"bill,amount,reference\nSAT2026-00000001,1.00,X\n")
    assert r.status_code == 403 and _payments(ctx) == 0
