"""The console's catalog, orders and subscriptions pages: CSV upload with per-row errors, an
order's items, the binding of each subscription and its moves; who sees and does what."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from satiot.bss.models import Customer, ProductOffering, Subscription
from satiot.core.auth.roles import Role
from tests.bss.order_world import CSV_HEADER, MODEL, shop, terminal
from tests.bss.test_orders import all_counts
from tests.web.console_helpers import signed_in


def _as(client: TestClient, username: str) -> str:
    client.cookies.clear()
    return signed_in(client, username)


def _upload(client: TestClient, csrf: str, text: str, **form: str):  # type: ignore[no-untyped-def]
    return client.post(
        "/orders/upload",
        data={"csrf_token": csrf, **form},
        files={"file": ("devices.csv", text.encode(), "text/csv")},
        follow_redirects=False,
    )


def test_a_customer_uploads_a_csv_sees_errors_then_its_order_and_subscriptions(
    client: TestClient, ctx, world
):
    s = shop(ctx, world)
    csrf = _as(client, s.admin.username)
    html = client.get("/catalog").text
    assert "SAT-BUNDLE-100" in html and "¥6.00 per device per month" in html
    assert "Design an offering" not in html and "Launch" not in html
    assert 'id="csv-upload"' in client.get("/orders").text
    rows = [terminal().csv_row() for _ in range(3)]
    bad = "\n".join([CSV_HEADER, rows[0], rows[1].replace(MODEL, "TQ-NOPE"), "1,2"]) + "\n"
    before = all_counts(ctx)
    r = _upload(client, csrf, bad)
    assert r.status_code == 422
    found = re.findall(r'<tr class="csv-error"><td class="num">(\d+)</td>', r.text)
    assert found == ["3", "4"], r.text
    assert "TQ-NOPE" in r.text and "nothing was applied" in r.text
    assert all_counts(ctx) == before
    r = _upload(client, csrf, "\n".join([CSV_HEADER, *rows]) + "\n")
    assert r.status_code == 303, r.text
    order_url = r.headers["location"]
    html = client.get(order_url).text
    assert 'id="order-state">completed<' in html
    assert html.count('class="item-row item-completed"') == 3
    assert "Order accepted: 3 items" in html
    listing = client.get("/orders").text
    assert order_url.rsplit("/", 1)[1][:8] in listing
    page = client.get("/subscriptions").text
    with ctx.db.read() as session:
        subs = session.scalars(select(Subscription).order_by(Subscription.dev_eui)).all()
    for sub in subs:
        assert sub.imei in page and sub.iot_number in page and sub.handle in page
    target = subs[0]
    r = client.post(
        f"/subscriptions/{target.id}/suspend",
        data={"csrf_token": csrf, "reason": "lost"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    html = client.get(r.headers["location"]).text
    assert "Subscription suspended." in html and "badge-suspended" in html
    assert f"/subscriptions/{target.id}/resume" in html
    # A customer user reads everything but may not order or move subscriptions.
    reader = world.user(s.tenant, Role.CUSTOMER_USER)
    csrf = _as(client, reader.username)
    assert 'id="csv-upload"' not in client.get("/orders").text
    assert "/resume" not in client.get("/subscriptions").text
    assert _upload(client, csrf, bad).status_code == 403


def test_staff_design_and_launch_and_order_for_a_customer(client: TestClient, ctx, world):
    s = shop(ctx, world)
    other = shop(ctx, world)
    csrf = _as(client, "admin")
    r = client.post(
        "/catalog",
        data={
            "csrf_token": csrf,
            "code": "SAT-BUNDLE-500",
            "name": "500 messages",
            "price_name": "Monthly bundle",
            "kind": "recurring",
            "amount": "20.00",
            "allowance_messages": "500",
            "pooled": "true",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert "is in design" in client.get("/catalog").text
    with ctx.db.read() as session:
        made = session.scalar(
            select(ProductOffering).where(ProductOffering.code == "SAT-BUNDLE-500")
        )
    r = client.post(
        f"/catalog/{made.id}/lifecycle",
        data={"csrf_token": csrf, "target": "Active"},
        follow_redirects=False,
    )
    html = client.get("/catalog").text
    assert "SAT-BUNDLE-500 version 1 is Active." in html
    assert "500 messages per device included (pooled" in html
    # Staff upload on behalf of a customer they pick; the other customer sees nothing of it.
    text = "\n".join([CSV_HEADER, terminal().csv_row()]) + "\n"
    assert 'name="customer_id"' in client.get("/orders").text
    r = _upload(client, csrf, text, customer_id=str(s.customer_id))
    assert r.status_code == 303, r.text
    _as(client, other.admin.username)
    assert "order-row" not in client.get("/orders").text
    assert client.get(r.headers["location"]).status_code == 404
    assert "subscription-row" not in client.get("/subscriptions").text


def test_catalog_form_refuses_what_the_api_refuses_and_never_answers_500(
    client: TestClient, ctx, world
):
    """An amount of ``Infinity`` or of 2^63 micro-yuan, or a size beyond 64 bits, was a 500
    (OverflowError); Arabic-Indic digits and sizes beyond the API's bounds were accepted."""
    csrf = _as(client, "admin")
    base = {"csrf_token": csrf, "name": "Fuzz", "price_name": "Monthly", "kind": "per-byte"}
    for n, changes in enumerate(
        (
            {"amount": "Infinity"},
            {"amount": "1e400"},
            {"amount": str(2**63)},
            {"amount": "99999999999999"},
            {"amount": "١٢"},
            {"amount": "1", "min_billable_bytes": str(2**63)},
            {"amount": "1", "min_billable_bytes": "5000000"},
            {"amount": "1", "kind": "recurring", "allowance_messages": "9" * 19},
        )
    ):
        code = f"FUZZ-{n}"
        r = client.post("/catalog", data={**base, "code": code, **changes})
        assert r.status_code == 200 and "flash-error" in r.text, changes
        with ctx.db.read() as session:
            made = session.scalar(select(ProductOffering).where(ProductOffering.code == code))
        assert made is None, changes
    r = client.post("/catalog", data={**base, "code": "FUZZ-OK", "amount": "0.000001"})
    assert "is in design" in r.text


def test_an_excel_gbk_csv_is_placed_with_the_encoding_chosen(client: TestClient, ctx, world):
    """The upload form offers GB18030 (GBK), as Excel saves "CSV" on Chinese Windows."""
    s = shop(ctx, world)
    csrf = _as(client, s.admin.username)
    form = client.get("/orders").text
    assert '<select name="encoding">' in form and '<option value="gb18030">' in form
    made = [terminal() for _ in range(2)]
    rows = [f"{t.csv_row()},水泵 {i}" for i, t in enumerate(made)]
    data = "\n".join([CSV_HEADER + ",name", *rows]).encode("gb18030")

    def upload(**form: str):  # type: ignore[no-untyped-def]
        return client.post(
            "/orders/upload",
            data={"csrf_token": csrf, **form},
            files={"file": ("devices.csv", data, "text/csv")},
            follow_redirects=False,
        )

    before = all_counts(ctx)
    r = upload()
    assert r.status_code == 422 and "it reads as GB18030 (GBK)" in r.text
    r = upload(encoding="latin-1")
    assert r.status_code == 422 and "unknown encoding" in r.text
    assert all_counts(ctx) == before
    r = upload(encoding="gb18030")
    assert r.status_code == 303, r.text
    html = client.get(r.headers["location"]).text
    assert "Order accepted: 2 items" in html
    with ctx.db.read() as session:
        found = session.scalars(
            select(Subscription.dev_eui).where(Subscription.dev_eui.in_([t.dev_eui for t in made]))
        ).all()
    assert sorted(found) == sorted(t.dev_eui for t in made)


def test_staff_pick_among_customers_that_may_order(client: TestClient, ctx, world):
    """The form greys out a customer that may not order yet, saying why, instead of letting
    staff upload a file only to be told so; with none left, it says what to do first."""
    ready, waiting = shop(ctx, world), shop(ctx, world)
    with ctx.db.write() as session:
        session.get(Customer, waiting.customer_id).risk_status = "pending"
    _as(client, "admin")
    html = client.get("/orders").text
    options = dict(re.findall(r'<option value="([0-9a-f-]{36})"( disabled)?>', html))
    assert options == {str(ready.customer_id): "", str(waiting.customer_id): " disabled"}
    assert "— no risk assessment yet</option>" in html
    assert 'id="no-orderer"' not in html
    # The waiting customer's own admin is told why before choosing a file, the ready one not.
    _as(client, waiting.admin.username)
    assert "cannot order yet (no risk assessment yet)" in client.get("/orders").text
    _as(client, ready.admin.username)
    assert 'id="no-orderer"' not in client.get("/orders").text
    _as(client, "admin")
    with ctx.db.write() as session:
        session.get(Customer, ready.customer_id).status = "closed"
    html = client.get("/orders").text
    assert "— closed, not validated</option>" in html
    assert 'id="no-orderer"' in html and 'href="/customers"' in html
