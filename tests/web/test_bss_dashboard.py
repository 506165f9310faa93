"""The business figures on the dashboard and the Usage page's account of what was not charged:
what waits for staff, what a customer owes, and traffic nobody pays for, per audience."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from satiot.bss import billing, billing_jobs
from satiot.bss.credit_notes import issue_credit_note
from satiot.bss.invoices import hold_bill, send_bill, validate_bill
from satiot.bss.models import Contract, Customer, CustomerBill, ProductOrder, Subscription
from satiot.bss.money import format_cny
from satiot.bss.payments import record_payment, record_refund
from satiot.core import jobs
from satiot.core.auth.roles import Role
from satiot.core.models import Tenant
from tests.bss.billing_world import (
    RUN_SETTINGS,
    USCCS,
    offering,
    price,
    rate_all,
    sent_bill_for,
    shop,
    uplink,
)
from tests.web.console_helpers import signed_in

FIGURE = re.compile(
    r'<div class="figure card( figure-alert)?">\s*<div class="figure-label">([^<]+)</div>\s*'
    r'<div class="figure-value">([^<]*)</div>\s*<div class="figure-note">(.*?)</div>',
    re.S,
)


def _figures(html: str) -> dict[str, tuple[str, str, bool]]:
    """label -> (value, note without tags, highlighted)."""
    return {
        label: (value.strip(), re.sub(r"<[^>]+>", "", note).strip(), bool(alert))
        for alert, label, value, note in FIGURE.findall(html)
    }


def _as(client: TestClient, username: str) -> dict[str, tuple[str, str, bool]]:
    client.cookies.clear()
    signed_in(client, username)
    return _figures(client.get("/").text)


def _business(world, ctx):
    """Two customers in service, one waiting in manual review; a draft, orders, a suspension
    and an unpaid bill of the first."""
    acme = shop(world)
    other = shop(world, uscc=USCCS[1], name="上海其他物联有限公司")
    plan = offering(ctx, "Plan", [price("recurring", 1_000_000)])
    start = datetime(2026, 10, 1, tzinfo=UTC)
    bill = sent_bill_for(world, acme.tenant.id)  # October's, with an active device of acme
    acme.n[0] += 1  # that device took acme's first DevEUI
    acme.device(plan, start)
    acme.device(plan, start, status="suspended")
    other.device(plan, start)
    waiting = shop(world, uscc=USCCS[2], name="Waiting Co")  # then sent back to review
    now = ctx.clock.now()
    with ctx.db.write() as s:
        customer = s.get(Customer, waiting.customer_id)
        assert customer is not None
        customer.status, customer.risk_status = "manual-review", "pending"
        signed = s.get(Contract, acme.contract_id)
        assert signed is not None
        s.add(
            Contract(
                tenant_id=acme.tenant.id,
                customer_id=acme.customer_id,
                number=signed.number,
                version=2,
                supersedes_id=signed.id,
                scenario=signed.scenario,
                allowed_models=signed.allowed_models,
                max_devices=signed.max_devices,
                quota_action="notify",
                destination_allow_list=[],
                service_area=["11"],
                offering_ids=[],
                status="draft",
                created_at=now,
            )
        )
        for state, age in (("held", 1), ("failed", 3), ("partial", 45), ("completed", 2)):
            s.add(
                ProductOrder(
                    tenant_id=acme.tenant.id,
                    customer_id=acme.customer_id,
                    contract_id=acme.contract_id,
                    billing_account_id=acme.account_id,
                    state=state,
                    source="api",
                    placed_by="test",
                    created_at=now - timedelta(days=age),
                )
            )
    return acme, other, bill


def test_staff_see_the_work_waiting_and_what_is_owed(client: TestClient, ctx, world):
    _business(world, ctx)
    world.user(world.operator, Role.OPERATOR_ADMIN, "boss")
    board = _as(client, "boss")
    assert board["Customers verified"] == (
        "2",
        "0 to verify, 1 in manual review · review",
        True,
    )
    assert board["Contracts in force"][:2] == ("3", "1 draft awaiting signature · contracts")
    # held is open; failed counts (3 days old), the 45-day-old partial no longer does
    assert board["Open orders"] == (
        "1",
        "1 held, 1 failed or partial in the last 30 days · orders",
        True,
    )
    assert board["Subscriptions active"][:2] == ("3", "1 suspended · review")
    value, note, late = board["Receivable"]
    assert value.startswith("¥") and value != "¥0.00"
    assert note == "1 invoice unpaid · invoices" and not late

    ctx.clock.advance(timedelta(days=40))  # past the bill's 30 days
    board = _as(client, "boss")
    assert board["Receivable"][1:] == ("1 invoice unpaid, 1 past due · invoices", True)
    page = client.get("/").text
    assert "/customers?status=manual-review" in page
    assert 'href="/invoices?overdue=1"' in page  # the figure opens the bills past due


def test_a_customer_counts_only_its_own(client: TestClient, ctx, world):
    acme, other, _bill = _business(world, ctx)
    world.user(acme.tenant, Role.CUSTOMER_ADMIN, "acme")
    world.user(other.tenant, Role.CUSTOMER_ADMIN, "other")
    mine = _as(client, "acme")
    assert "Customers verified" not in mine and "Receivable" not in mine
    assert mine["Subscriptions active"][:2] == ("2", "1 suspended · review")
    assert mine["Open orders"][0] == "1"
    assert mine["Amount due"][0] != "¥0.00"
    theirs = _as(client, "other")
    assert theirs["Subscriptions active"][:2] == ("1", "0 suspended · subscriptions")
    assert theirs["Open orders"] == (
        "0",
        "0 held, 0 failed or partial in the last 30 days · orders",
        False,
    )
    assert theirs["Amount due"][:2] == ("¥0.00", "0 invoices unpaid · invoices")


def test_money_owed_back_is_shown_until_refunded(client: TestClient, ctx, world):
    """A credit note beyond what was left to pay: staff see what to refund and are led to those
    bills; the customer sees it owed to it; the refund makes both quiet again."""
    acme, _other, made = _business(world, ctx)
    bill = uuid.UUID(made["bill_id"])  # sent, and credited ¥0.10 already
    world.user(world.operator, Role.OPERATOR_ADMIN, "boss")
    world.user(acme.tenant, Role.CUSTOMER_ADMIN, "acme")
    with ctx.db.write() as w:
        owed = w.get(CustomerBill, bill)
        assert owed is not None
        due, left = owed.due_micros, owed.subtotal_micros - 100_000
        record_payment(
            w, world.system, bill, amount_micros=due, method="bank", reference="B-1",
            at=ctx.clock.now(),
        )  # fmt: skip
        issue_credit_note(
            w, world.system, bill, amount_micros=left, reason="Returned", at=ctx.clock.now(),
            series_prefix="SAT", tz="Asia/Shanghai",
        )  # fmt: skip
        w.flush()
        w.refresh(owed)
        back = -owed.due_micros
        assert back > 0 and owed.state == "settled"
    board = _as(client, "boss")
    value, note_text, alert = board["Receivable"]
    assert value == "¥0.00" and alert
    assert note_text == f"0 invoices unpaid, {format_cny(back)} to refund · invoices"
    assert 'href="/invoices?to_refund=1"' in client.get("/").text
    assert _as(client, "acme")["Amount due"][1:] == (
        f"0 invoices unpaid, {format_cny(back)} owed to you · invoices",
        False,
    )
    with ctx.db.write() as w:
        record_refund(
            w, world.system, bill, amount_micros=back, method="bank", reference="R-1",
            at=ctx.clock.now(),
        )  # fmt: skip
    assert _as(client, "boss")["Receivable"][1:] == ("0 invoices unpaid · invoices", False)


def test_a_regulator_sees_no_business_it_cannot_open(client: TestClient, ctx, world):
    _business(world, ctx)
    world.user(world.operator, Role.REGULATOR, "miit")
    board = _as(client, "miit")
    for label in ("Open orders", "Receivable", "Amount due"):
        assert label not in board


def test_usage_page_explains_what_was_not_charged(client: TestClient, ctx, world):
    acme = shop(world)
    other = shop(world, uscc=USCCS[1], name="上海其他物联有限公司")
    plan = offering(ctx, "Plan", [price("per-message", 10_000)])
    paid = acme.device(plan, datetime(2026, 10, 1, tzinfo=UTC))
    late = acme.device(plan, datetime(2026, 11, 20, tzinfo=UTC))
    stranger = Subscription(tenant_id=acme.tenant.id, dev_eui="00000000DEADBEEF")
    when = datetime(2026, 11, 5, tzinfo=UTC)
    uplink(ctx, paid, 10, when)
    for i in range(3):
        uplink(ctx, stranger, 10, when + timedelta(minutes=i))  # no subscription at all
    uplink(ctx, late, 10, when)  # before its activation
    uplink(ctx, other.device(plan, when - timedelta(days=1)), 10, when)
    rate_all(ctx)
    with ctx.db.read() as s:
        acme_name = s.get(Tenant, acme.tenant.id).name

    world.user(world.operator, Role.OPERATOR_ADMIN, "boss")
    client.cookies.clear()
    signed_in(client, "boss")
    html = client.get("/usage?period=2026-11").text
    assert "rejected</span> 4 messages" in html and "rated</span> 2 messages" in html
    rows = re.findall(
        r'<tr class="rejection-row">\s*<td><code>([^<]+)</code></td>\s*<td>([^<]+)</td>\s*'
        r'<td class="num">([^<]+)</td>\s*<td class="muted">([^<]*)</td>',
        html,
    )
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("no-subscription", acme_name, "3"),
        ("not-active", acme_name, "1"),
    ]
    assert "no live subscription" in rows[0][3] and "before" in rows[1][3]

    world.user(other.tenant, Role.CUSTOMER_ADMIN, "other")
    client.cookies.clear()
    signed_in(client, "other")
    html = client.get("/usage?period=2026-11").text
    assert "Not charged" not in html and "rated</span> 1 messages" in html


def test_billing_staff_see_the_bills_a_run_left_to_release(client: TestClient, ctx, world):
    acme, _other, _bill = _business(world, ctx)  # October's bill of acme is sent already
    ctx.clock.set(datetime(2026, 12, 1, 2, tzinfo=UTC))  # November is over: two bills to run
    with ctx.db.write() as w:
        run = billing.run_bills(
            w, world.system, "2026-11", at=ctx.clock.now(), settings=RUN_SETTINGS
        )
        ids = list(w.scalars(select(CustomerBill.id).where(CustomerBill.bill_run_id == run.id)))
        hold_bill(w, world.system, ids[0], at=ctx.clock.now(), reason="dispute")
    waiting = len(ids) - 1
    assert waiting == 1
    world.user(world.operator, Role.BILLING, "clerk")
    world.user(world.operator, Role.COMPLIANCE, "auditor")
    world.user(acme.tenant, Role.CUSTOMER_ADMIN, "acme")
    assert _as(client, "clerk")["Bills to release"] == (
        f"{waiting}",
        f"{waiting} to validate, 0 to send, 1 on hold · bill runs",
        True,
    )
    assert 'href="/bill-runs"' in client.get("/").text
    with ctx.db.write() as w:
        for bill_id in ids[1:]:
            validate_bill(w, world.system, bill_id, at=ctx.clock.now())
    assert _as(client, "clerk")["Bills to release"][1] == (
        f"0 to validate, {waiting} to send, 1 on hold · bill runs"
    )
    assert "Bills to release" not in _as(client, "auditor")  # may read bills, not release them
    assert "Bills to release" not in _as(client, "acme")

    # Month-end work queued in the background: under way, then failed (overtaken by a send
    # from elsewhere), which wants attention even with nothing left to release.
    with ctx.db.write() as w:
        billing_jobs.queue_release(w, world.system, run.id, "send", at=ctx.clock.now())
    value, note, _alert = _as(client, "clerk")["Bills to release"]
    assert note.endswith(f"(run …{str(run.id)[-8:]}) is queued · bill runs")
    assert note.startswith(f"0 to validate, {waiting} to send, 1 on hold; Send the bills of")
    with ctx.db.write() as w:
        for bill_id in ids[1:]:
            send_bill(w, world.system, bill_id, at=ctx.clock.now())
    jobs.run_pending(ctx.db, ctx.clock, ctx.settings)
    value, note, alert = _as(client, "clerk")["Bills to release"]
    assert value == "0" and alert is True
    assert "failed: no bill of run" in note and "nothing to send" in note


def test_prepaid_balances_running_low_are_shown_and_listed(client: TestClient, ctx, world):
    from satiot.bss.accounts import set_low_balance
    from satiot.bss.payments import top_up

    flush = shop(world, payment_mode="prepaid", name="Flush Co")
    thin = shop(world, uscc=USCCS[1], payment_mode="prepaid", name="Thin Co")
    postpaid = shop(world, uscc=USCCS[2], name="Postpaid Co")
    with ctx.db.write() as w:
        for s, amount, low in ((flush, 500_000_000, 100_000_000), (thin, 20_000_000, 50_000_000)):
            top_up(w, world.system, s.account_id, amount_micros=amount, method="bank",
                   reference="T1", at=ctx.clock.now())  # fmt: skip
            set_low_balance(w, world.system, s.account_id, low, at=ctx.clock.now())
    world.user(world.operator, Role.BUSINESS, "sales")
    world.user(thin.tenant, Role.CUSTOMER_ADMIN, "thin")
    world.user(flush.tenant, Role.CUSTOMER_ADMIN, "flush")
    world.user(postpaid.tenant, Role.CUSTOMER_ADMIN, "post")
    assert _as(client, "sales")["Prepaid accounts"] == (
        "2", "2 accounts, 1 running low · accounts", False,
    )  # fmt: skip
    assert _as(client, "thin")["Prepaid balance"] == (
        "¥20.00", "1 account, 1 running low · accounts", True,
    )  # fmt: skip
    assert 'href="/billing-accounts?mode=prepaid&amp;low=1"' in client.get("/").text
    assert _as(client, "flush")["Prepaid balance"][2] is False
    assert 'href="/billing-accounts?mode=prepaid"' in client.get("/").text
    assert "Prepaid balance" not in _as(client, "post")  # no prepaid account: no figure

    _as(client, "sales")
    listed = client.get("/billing-accounts?mode=prepaid&low=1").text
    rows = re.findall(r'<tr class="account-row"[^>]*>(.*?)</tr>', listed, re.S)
    assert len(rows) == 1 and "Thin Co" in rows[0] and ">low</span>" in rows[0]
    assert 'id="low-filter" checked' in listed
    everyone = client.get("/billing-accounts").text
    assert everyone.count('class="account-row"') == 3 and everyone.count(">low</span>") == 1


def test_suspended_devices_are_counted_by_who_suspended_them(client: TestClient, ctx, world):
    acme = shop(world)
    plan = offering(ctx, "Plan", [price("recurring", 1_000_000)])
    start = datetime(2026, 10, 1, tzinfo=UTC)
    subs = [acme.device(plan, start) for _ in range(5)]
    with ctx.db.write() as s:
        for sub, origin in zip(subs, ("customer", "customer", "operator", "quota"), strict=False):
            row = s.get(Subscription, sub.id)
            assert row is not None
            row.status, row.suspended_by = "suspended", origin
    world.user(acme.tenant, Role.CUSTOMER_ADMIN, "acme")
    mine = _as(client, "acme")
    assert mine["Subscriptions active"][:2] == (
        "1",
        "4 suspended: 2 by you, 1 by the operator, 1 at the quota · review",
    )
    world.user(world.operator, Role.OPERATOR_ADMIN, "boss")
    staff = _as(client, "boss")
    assert staff["Subscriptions active"][1].startswith("4 suspended: 2 by customers, 1 by the")

    # the Subscriptions page keeps one kind of suspension; the figure links to the one kind
    # there is when there is only one
    assert 'href="/subscriptions?status=suspended"' in client.get("/").text
    for origin, rows in (("customer", 2), ("operator", 1), ("quota", 1), ("balance", 0)):
        listed = client.get(f"/subscriptions?by={origin}").text
        assert listed.count('class="subscription-row"') == rows, origin
        assert f'<option value="{origin}" selected>' in listed
    assert client.get("/subscriptions?by=nobody").text.count('class="subscription-row"') == 5
    exported = client.get("/subscriptions/export.csv?by=customer").content.decode("utf-8-sig")
    assert len(exported.strip().splitlines()) == 1 + 2
    with ctx.db.write() as s:
        for sub in subs[:3]:
            row = s.get(Subscription, sub.id)
            assert row is not None
            row.suspended_by = "quota"
    assert 'href="/subscriptions?status=suspended&amp;by=quota"' in client.get("/").text
