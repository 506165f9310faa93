"""The console's Usage and Invoices pages: counters, the bill's lines, PDF, moves, payments;
customers see only their own, and bills only once sent."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html import unescape

from fastapi.testclient import TestClient
from sqlalchemy import select

from satiot.bss.billing import RunSettings, run_bills
from satiot.bss.invoices import send_bill, validate_bill
from satiot.bss.models import CustomerBill
from satiot.core.auth.roles import Role
from tests.bss.billing_world import offering, pooled_usage, price, rate_all, shop, uplink
from tests.web.console_helpers import signed_in

DEC_1 = datetime(2026, 12, 1, 2, tzinfo=UTC)


def _as(client: TestClient, username: str) -> str:
    client.cookies.clear()
    return signed_in(client, username)


def _november_bill(ctx, world, account_id) -> CustomerBill:
    """Bill November (a run on 1 December) and return the account's bill."""
    with ctx.db.write() as w:
        run_bills(
            w,
            world.system,
            "2026-11",
            at=DEC_1,
            settings=RunSettings(600, "SAT", 30, "Asia/Shanghai"),
        )
        bill = w.scalar(select(CustomerBill).where(CustomerBill.billing_account_id == account_id))
    assert bill is not None
    return bill


def _monthly_bill(ctx, world):  # type: ignore[no-untyped-def]
    """A customer with one device at ¥100 a month, and its November bill (¥106.00), new."""
    s = shop(world)
    off = offering(ctx, "Bundle", [price("recurring", 100_000_000)])
    s.device(off, datetime(2026, 10, 1, tzinfo=UTC))
    rate_all(ctx)
    ctx.clock.set(DEC_1)
    return s, _november_bill(ctx, world, s.account_id)


def test_usage_invoices_moves_and_payments(client: TestClient, ctx, world):
    s = shop(world, quota_messages=4)
    off = offering(
        ctx,
        "Bundle",
        [price("recurring", 10_000_000, allowance_messages=2), price("per-message", 10_000)],
    )
    sub = s.device(off, datetime(2026, 10, 1, tzinfo=UTC))
    for i in range(3):
        uplink(ctx, sub, 20, datetime(2026, 11, 5, i, tzinfo=UTC))
    other = shop(world, uscc="91310115MA1K3BTP2B")
    theirs = other.device(off, datetime(2026, 10, 1, tzinfo=UTC))
    uplink(ctx, theirs, 20, datetime(2026, 11, 5, tzinfo=UTC))
    rate_all(ctx)
    ctx.clock.set(DEC_1)
    customer = world.user(s.tenant, Role.CUSTOMER_ADMIN, "cust")
    clerk = world.user(world.operator, Role.BILLING, "clerk")

    _as(client, customer.username)
    html = client.get("/usage?period=2026-11").text
    assert sub.dev_eui in html and theirs.dev_eui not in html
    assert "150&nbsp;%" in html and "75&nbsp;%" in html  # allowance 3 of 2, quota 3 of 4
    assert 'href="/usage"' in client.get("/").text and 'href="/invoices"' in client.get("/").text

    bill = _november_bill(ctx, world, s.account_id)
    assert bill.number not in client.get("/invoices").text  # not sent yet
    assert client.get(f"/invoices/{bill.id}").status_code == 404

    csrf = _as(client, clerk.username)
    page = client.get(f"/invoices/{bill.id}").text
    assert "Validate" in page and "Record payment" not in page
    for move in ("validate", "send"):
        r = client.post(
            f"/invoices/{bill.id}/{move}", data={"csrf_token": csrf}, follow_redirects=False
        )
        assert r.status_code == 303
    r = client.post(
        f"/invoices/{bill.id}/payments",
        data={"csrf_token": csrf, "amount": "5.00", "method": "bank", "reference": "CMB-1"},
        follow_redirects=True,
    )
    assert "Payment recorded." in r.text and "CMB-1" in r.text

    _as(client, customer.username)
    listing = client.get("/invoices").text
    assert bill.number in listing and "partiallyPaid" in listing
    detail = client.get(f"/invoices/{bill.id}").text
    assert "Record payment" not in detail and "Validate" not in detail
    assert f"¥{bill.total_micros / 1_000_000:,.2f}" in detail
    pdf = client.get(f"/invoices/{bill.id}/pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    theirs_bill = None
    with ctx.db.read() as r2:
        theirs_bill = r2.scalar(
            select(CustomerBill.id).where(CustomerBill.billing_account_id == other.account_id)
        )
    assert client.get(f"/invoices/{theirs_bill}").status_code == 404
    assert client.get(f"/invoices/{theirs_bill}/pdf").status_code == 404


def test_payment_amounts_a_decimal_reads_but_a_form_should_not_are_refused(
    client: TestClient, ctx, world
):
    """``Infinity``, ``1e400`` and ``sNaN`` were a 500 (decimal.InvalidOperation); Arabic-Indic
    digits were read as an amount."""
    from satiot.bss.models import Payment

    s = shop(world)
    off = offering(ctx, "Bundle", [price("recurring", 10_000_000)])
    s.device(off, datetime(2026, 10, 1, tzinfo=UTC))
    rate_all(ctx)
    ctx.clock.set(DEC_1)
    bill = _november_bill(ctx, world, s.account_id)
    clerk = world.user(world.operator, Role.BILLING, "clerk")
    csrf = _as(client, clerk.username)
    for move in ("validate", "send"):
        client.post(f"/invoices/{bill.id}/{move}", data={"csrf_token": csrf})
    for amount in ("Infinity", "-Infinity", "1e400", "sNaN", "NaN", "١٠", "1" * 30):
        r = client.post(
            f"/invoices/{bill.id}/payments",
            data={"csrf_token": csrf, "amount": amount, "reference": f"R-{amount}"},
        )
        assert r.status_code == 200 and "flash-error" in r.text, amount
    with ctx.db.read() as r2:
        assert r2.scalar(select(Payment).where(Payment.bill_id == bill.id)) is None


def test_billing_staff_adjust_a_new_invoice_and_bad_amounts_change_nothing(
    client: TestClient, ctx, world
):
    _, bill = _monthly_bill(ctx, world)
    csrf = _as(client, world.user(world.operator, Role.BILLING, "clerk").username)
    assert 'id="adjustment-form"' in client.get(f"/invoices/{bill.id}").text
    url = f"/invoices/{bill.id}/adjustments"
    for amount in ("0", "-0.001", "Infinity", "١٠", "-200.00", "abc"):
        r = client.post(url, data={"csrf_token": csrf, "amount": amount, "reason": "x"})
        assert r.status_code == 200 and "flash-error" in r.text, amount
    r = client.post(url, data={"csrf_token": csrf, "amount": "-20.00", "reason": " "})
    assert "say why" in unescape(r.text)
    r = client.post(url, data={"csrf_token": csrf, "amount": "-20.00", "reason": "Outage credit"})
    assert "Adjustment added" in r.text
    row = r.text.split("Outage credit", 1)[1].split("</tr>", 1)[0]
    assert "-¥20.00" in row and "1 item" in unescape(r.text)
    assert re.search(r'id="invoice-total">¥84\.80<', r.text)  # ¥80 + 6 %
    client.post(f"/invoices/{bill.id}/validate", data={"csrf_token": csrf})
    page = client.get(f"/invoices/{bill.id}").text
    assert 'id="adjustment-form"' not in page  # validated: what the customer is sent
    with ctx.db.read() as r2:
        assert r2.get(CustomerBill, bill.id).total_micros == 84_800_000


def test_billing_staff_credit_a_sent_invoice_and_the_customer_reads_the_note(
    client: TestClient, ctx, world
):
    s, bill = _monthly_bill(ctx, world)  # ¥100 + 6 % VAT = ¥106.00
    csrf = _as(client, world.user(world.operator, Role.BILLING, "clerk").username)
    assert 'id="credit-note-form"' not in client.get(f"/invoices/{bill.id}").text  # new: adjust
    for move in ("validate", "send"):
        client.post(f"/invoices/{bill.id}/{move}", data={"csrf_token": csrf})
    assert 'id="credit-note-form"' in client.get(f"/invoices/{bill.id}").text
    url = f"/invoices/{bill.id}/credit-notes"
    for amount in ("0", "-5.00", "0.001", "Infinity", "abc", "100.01"):
        r = client.post(url, data={"csrf_token": csrf, "amount": amount, "reason": "x"})
        assert r.status_code == 200 and "flash-error" in r.text, amount
    r = client.post(url, data={"csrf_token": csrf, "amount": "20.00", "reason": " "})
    assert "say why" in unescape(r.text)
    with ctx.db.read() as r2:
        assert r2.get(CustomerBill, bill.id).credited_micros == 0
    r = client.post(url, data={"csrf_token": csrf, "amount": "20.00", "reason": "Outage credit"})
    assert "Credit note SATCN2026-00000001 issued for ¥21.20." in unescape(r.text)
    row = r.text.split('id="credit-notes-table"', 1)[1].split("</tr>", 2)[1]
    assert "SATCN2026-00000001" in row and "Outage credit" in row and "¥21.20" in row
    assert re.search(r'id="invoice-due">¥84\.80<', r.text)  # ¥106.00 less ¥21.20
    assert re.search(r'id="invoice-total">¥106\.00<', r.text)  # the invoice's own figures stay
    pdf_link = re.search(r'href="(/invoices/credit-notes/[0-9a-f-]+/pdf)"', r.text)
    assert pdf_link is not None
    assert 'id="refund-form"' not in r.text  # the customer still owes
    pay = {"csrf_token": csrf, "amount": "84.80", "reference": "CMB-1"}
    assert "Payment recorded." in client.post(f"/invoices/{bill.id}/payments", data=pay).text
    r = client.post(url, data={"csrf_token": csrf, "amount": "10.00", "reason": "Late fix"})
    assert "Owed to the customer" in r.text and re.search(r'id="invoice-due">-¥10\.60<', r.text)
    assert re.search(r'id="refund-amount"[^>]*value="10\.60"', r.text)
    owing = client.get("/invoices?to_refund=1").text
    assert bill.number in owing and 'id="inv-to-refund" checked' in owing
    export_link = owing.split('id="invoices-export"', 1)[0].rsplit("href=", 1)[1]
    assert "to_refund=1" in unescape(export_link)
    refund = {"csrf_token": csrf, "amount": "10.61", "reference": "REF-1"}
    r = client.post(f"/invoices/{bill.id}/refunds", data=refund)
    assert "flash-error" in r.text and "owes the customer" in unescape(r.text)
    r = client.post(f"/invoices/{bill.id}/refunds", data=refund | {"amount": "10.60"})
    assert "Refund recorded." in r.text and re.search(r'id="invoice-due">¥0\.00<', r.text)
    assert 'id="refund-form"' not in r.text and "-¥10.60" in r.text  # listed with the payments
    assert bill.number not in client.get("/invoices?to_refund=1").text
    page = client.get("/invoices?period=2026-12").text
    link = unescape(page.split('id="credit-notes-export"', 1)[0].rsplit('href="', 1)[1])
    assert link.split('"', 1)[0] == "/invoices/credit-notes.csv?period=2026-12"
    register = client.get("/invoices/credit-notes.csv?period=2026-12")
    assert 'filename="satiot-credit-notes-2026-12.csv"' in register.headers["content-disposition"]
    assert register.text.count("SATCN2026-") == 2  # the two notes issued on 1 December
    assert client.get("/invoices/credit-notes.csv?period=2026-11").text.count("SATCN") == 0
    _as(client, world.user(s.tenant, Role.CUSTOMER_ADMIN, "cust").username)
    page = client.get(f"/invoices/{bill.id}").text
    assert "SATCN2026-00000001" in page and 'id="credit-note-form"' not in page
    pdf = client.get(pdf_link[1])
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    other = shop(world, uscc="91310115MA1K3BTP2B")
    _as(client, world.user(other.tenant, Role.CUSTOMER_ADMIN, "other").username)
    assert client.get(pdf_link[1]).status_code == 404  # another customer's note
    assert client.get("/invoices/credit-notes/not-an-id/pdf").status_code == 422


def test_an_invoice_unpaid_past_its_due_date_says_overdue(client: TestClient, ctx, world):
    s, bill = _monthly_bill(ctx, world)  # due 31 December
    csrf = _as(client, world.user(world.operator, Role.BILLING, "clerk").username)
    for move in ("validate", "send"):
        client.post(f"/invoices/{bill.id}/{move}", data={"csrf_token": csrf})
    assert 'id="invoice-overdue"' not in client.get(f"/invoices/{bill.id}").text
    ctx.clock.set(datetime(2027, 1, 2, tzinfo=UTC))
    _as(client, world.user(s.tenant, Role.CUSTOMER_ADMIN, "cust").username)
    assert 'id="invoice-overdue"' in client.get(f"/invoices/{bill.id}").text
    row = client.get("/invoices").text.split(bill.number, 1)[1].split("</tr>", 1)[0]
    assert "overdue" in row
    late = client.get("/invoices?overdue=1").text
    assert bill.number in late and 'id="inv-overdue" checked' in late
    export_link = unescape(late.split('id="invoices-export"', 1)[0].rsplit('href="', 1)[1])
    assert "overdue=1" in export_link
    assert bill.number in client.get(export_link.split('"', 1)[0]).text
    csrf = _as(client, "clerk")
    pay = {"csrf_token": csrf, "amount": "106.00", "reference": "LATE-1"}
    client.post(f"/invoices/{bill.id}/payments", data=pay)
    assert 'id="invoice-overdue"' not in client.get(f"/invoices/{bill.id}").text
    assert bill.number not in client.get("/invoices?overdue=1").text


def test_the_invoices_export_keeps_the_filter_and_a_customer_its_sent_bills(
    client: TestClient, ctx, world
):
    s, bill = _monthly_bill(ctx, world)
    _as(client, world.user(world.operator, Role.BILLING, "clerk").username)
    page = client.get("/invoices?period=2026-11&state=new").text
    link = unescape(page.split('id="invoices-export"', 1)[0].rsplit('href="', 1)[1].split('"')[0])
    assert link == "/invoices/export.csv?period=2026-11&state=new"
    export = client.get(link)
    assert 'filename="satiot-bills-2026-11.csv"' in export.headers["content-disposition"]
    lines = export.content.decode("utf-8-sig").splitlines()
    assert len(lines) == 2 and lines[1].startswith(f"{bill.number},2026-11,new,")
    assert len(client.get("/invoices/export.csv?state=sent").text.splitlines()) == 1
    odd = client.get('/invoices/export.csv?period=2026-1"')  # no month: every bill
    assert re.search(r'filename="satiot-bills-[0-9]{8}\.csv"', odd.headers["content-disposition"])
    assert bill.number in odd.text
    _as(client, world.user(s.tenant, Role.CUSTOMER_ADMIN, "cust").username)
    assert len(client.get("/invoices/export.csv").text.splitlines()) == 1  # not sent yet
    csrf = _as(client, "clerk")
    for move in ("validate", "send"):
        client.post(f"/invoices/{bill.id}/{move}", data={"csrf_token": csrf})
    _as(client, "cust")
    assert bill.number in client.get("/invoices/export.csv").text


def test_an_accounts_page_lists_its_invoices_and_opens_them_filtered(
    client: TestClient, ctx, world
):
    s, bill = _monthly_bill(ctx, world)
    other = shop(world, uscc="91310115MA1K3BTP2B")
    other.device(offering(ctx, "Other", [price("recurring", 1_000_000)]), DEC_1)
    with ctx.db.write() as w:  # December, for the other account only
        run_bills(
            w, world.system, "2026-12", at=datetime(2027, 1, 1, 2, tzinfo=UTC),
            settings=RunSettings(600, "SAT", 30, "Asia/Shanghai"), accounts=[other.account_id],
        )  # fmt: skip
        theirs = w.scalar(select(CustomerBill).where(CustomerBill.period == "2026-12"))
    csrf = _as(client, world.user(world.operator, Role.BILLING, "clerk").username)
    page = client.get(f"/billing-accounts/{s.account_id}").text
    table = page.split('id="account-invoices-table"', 1)[1].split("</table>", 1)[0]
    assert bill.number in table and theirs.number not in table and "¥106.00" in table
    assert f'href="/invoices?account={s.account_id}"' in page
    listing = client.get(f"/invoices?account={s.account_id}").text
    assert bill.number in listing and theirs.number not in listing
    assert 'id="invoices-account"' in listing and f'value="{s.account_id}"' in listing
    export = client.get(f"/invoices/export.csv?account={s.account_id}").text
    assert bill.number in export and theirs.number not in export
    bad = client.get("/invoices?account=nonsense").text
    assert "not a billing account id" in unescape(bad) and theirs.number in bad
    # a customer's account page lists its invoices once sent
    _as(client, world.user(s.tenant, Role.CUSTOMER_ADMIN, "cust").username)
    assert "No invoice yet." in client.get(f"/billing-accounts/{s.account_id}").text
    csrf = _as(client, "clerk")
    for move in ("validate", "send"):
        client.post(f"/invoices/{bill.id}/{move}", data={"csrf_token": csrf})
    _as(client, "cust")
    assert bill.number in client.get(f"/billing-accounts/{s.account_id}").text


def test_usage_page_names_a_pool_by_its_account_and_offering(client: TestClient, ctx, world):
    from satiot.bss.models import BillingAccount

    s = pooled_usage(ctx, world, 2)
    with ctx.db.read() as r:
        account = r.get(BillingAccount, s.account_id)
        assert account is not None
        name = account.name
    customer = world.user(s.tenant, Role.CUSTOMER_ADMIN, "cust")
    _as(client, customer.username)
    html = client.get("/usage?period=2026-11").text
    assert f'Pool of <a href="/billing-accounts/{s.account_id}">{name}</a> · Shared plan (v1)' in (
        html
    )
    assert "25&nbsp;%</span> of 8 msg" in html  # two devices' shares of 4 messages, two used


def test_an_invoice_shows_its_usage_by_device_in_pages_and_as_csv(client: TestClient, ctx, world):
    s = shop(world)
    off = offering(ctx, "Metered", [price("per-message", 10_000)])
    subs = [s.device(off, datetime(2026, 10, 1, tzinfo=UTC)) for _ in range(53)]
    for n, sub in enumerate(subs):
        for i in range(1 + n % 2):
            uplink(ctx, sub, 20, datetime(2026, 11, 5, i, n, tzinfo=UTC))
    rate_all(ctx)
    ctx.clock.set(DEC_1)
    bill = _november_bill(ctx, world, s.account_id)
    _as(client, world.user(world.operator, Role.BILLING, "clerk").username)

    first = client.get(f"/invoices/{bill.id}")
    assert first.status_code == 200
    assert first.text.count("<tr><td><code>") == 50
    assert subs[0].dev_eui in first.text and subs[52].dev_eui not in first.text
    assert "¥0.020000" in first.text and "¥0.010000" in first.text
    assert f'href="/invoices/{bill.id}/devices.csv"' in first.text
    (next_url,) = re.findall(r'<a href="([^"]+)" rel="next" id="devices-next">', first.text)
    rest = client.get(unescape(next_url))
    assert rest.status_code == 200
    assert subs[52].dev_eui in rest.text and subs[0].dev_eui not in rest.text
    assert "First devices" in rest.text and 'id="devices-next"' not in rest.text

    bad = client.get(f"/invoices/{bill.id}?devices_after=nonsense")
    assert bad.status_code == 200 and "cursor is not one this server issued" in bad.text
    assert subs[0].dev_eui in bad.text

    csv_file = client.get(f"/invoices/{bill.id}/devices.csv")
    assert csv_file.status_code == 200 and csv_file.content.startswith(b"\xef\xbb\xbf")
    assert len(csv_file.content.splitlines()) == 1 + 53
    owner = world.user(s.tenant, Role.CUSTOMER_ADMIN).username
    _as(client, owner)
    assert client.get(f"/invoices/{bill.id}/devices.csv").status_code == 404  # not sent yet
    with ctx.db.write() as w:
        validate_bill(w, world.system, bill.id, at=DEC_1)
        send_bill(w, world.system, bill.id, at=DEC_1)
    _as(client, owner)
    mine = client.get(f"/invoices/{bill.id}")
    assert mine.text.count("<tr><td><code>") == 50 and subs[0].dev_eui in mine.text
    assert len(client.get(f"/invoices/{bill.id}/devices.csv").content.splitlines()) == 1 + 53
    _as(client, world.user(world.tenant(), Role.CUSTOMER_ADMIN).username)
    assert client.get(f"/invoices/{bill.id}/devices.csv").status_code == 404
