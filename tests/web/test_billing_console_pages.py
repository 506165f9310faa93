"""The console's Bill runs and Billing accounts pages: running a finished month (a month not
over is refused and nothing changes), accounts with balances, a dry run that writes nothing,
and top-ups that record once per reference; customers see only their own accounts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from satiot.api.context import AppContext
from satiot.bss import billing
from satiot.bss.invoices import send_bill, validate_bill
from satiot.bss.models import BillingAccount, BillRun, CustomerBill, Payment, UsageRecord
from satiot.bss.money import format_cny
from satiot.core import jobs
from satiot.core.auth.roles import Role
from satiot.core.models import AuditEntry
from tests.bss.billing_world import Shop, offering, price, rate_all, shop, uplink
from tests.factories import World
from tests.web.console_helpers import signed_in

DEC_1 = datetime(2026, 12, 1, 2, tzinfo=UTC)  # 10:00 in Beijing: November is over


def _as(client: TestClient, username: str) -> str:
    client.cookies.clear()
    return signed_in(client, username)


def _count(ctx: AppContext, model: type) -> int:
    with ctx.db.read() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def _two_shops(ctx: AppContext, world: World) -> tuple[Shop, Shop]:
    """A prepaid customer and a postpaid one, each with a device used in November."""
    off = offering(ctx, "Bundle", [price("recurring", 10_000_000), price("per-message", 10_000)])
    mine = shop(world, payment_mode="prepaid", balance=50_000_000, name="Prepaid Co")
    theirs = shop(world, uscc="91310115MA1K3BTP2B", name="Postpaid Co")
    for s in (mine, theirs):
        sub = s.device(off, datetime(2026, 10, 1, tzinfo=UTC))
        for i in range(3):
            uplink(ctx, sub, 20, datetime(2026, 11, 5, i, tzinfo=UTC))
    rate_all(ctx)
    ctx.clock.set(DEC_1)
    return mine, theirs


def _sent_bill(ctx: AppContext, world: World, owner: Shop) -> tuple[uuid.UUID, str, int]:
    """Run November's bills (the clock at 1 December) and send ``owner``'s: its id, number
    and total."""
    with ctx.db.write() as w:
        billing.run_bills(
            w, world.system, "2026-11", at=ctx.clock.now(),
            settings=billing.RunSettings(600, "SAT", 30, "Asia/Shanghai"),
        )  # fmt: skip
        bill = w.scalars(
            select(CustomerBill).where(CustomerBill.billing_account_id == owner.account_id)
        ).one()
        validate_bill(w, world.system, bill.id, at=ctx.clock.now())
        send_bill(w, world.system, bill.id, at=ctx.clock.now())
        return bill.id, bill.number, bill.total_micros


def _run_jobs(ctx: AppContext) -> list:
    """What ``satiot up``'s job runner does: run every job queued."""
    return jobs.run_pending(ctx.db, ctx.clock, ctx.settings)


def _balance(ctx: AppContext, account_id) -> int:
    with ctx.db.read() as s:
        account = s.get(BillingAccount, account_id)
        assert account is not None
        return account.balance_micros


# ---- bill runs --------------------------------------------------------------------------------


def test_billing_staff_run_a_finished_month(client: TestClient, ctx: AppContext, world: World):
    _two_shops(ctx, world)
    clerk = world.user(world.operator, Role.BILLING, "clerk")
    csrf = _as(client, clerk.username)
    html = client.get("/bill-runs").text
    assert 'href="/bill-runs"' in html and "No bill run yet." in html
    assert 'id="run-form"' in html and 'value="2026-11"' in html  # the last finished month

    # A month not yet over, and a malformed one: an error, and nothing is written.
    for period, message in (
        ("2026-12", "period 2026-12 has not ended yet"),
        ("2026-13", "period must look like YYYY-MM"),
        ("1970-01", "nothing to bill for 1970-01"),
        ("", "period must look like YYYY-MM"),
    ):
        r = client.post("/bill-runs", data={"csrf_token": csrf, "period": period})
        assert r.status_code == 200 and "flash-error" in r.text and message in r.text, period
    assert _count(ctx, BillRun) == 0 and _count(ctx, CustomerBill) == 0

    # Without the form's token: refused.
    r = client.post("/bill-runs", data={"period": "2026-11"})
    assert r.status_code == 403 and _count(ctx, BillRun) == 0

    r = client.post(
        "/bill-runs", data={"csrf_token": csrf, "period": "2026-11"}, follow_redirects=False
    )
    assert r.status_code == 303 and r.headers["location"] == "/bill-runs"
    # Queued: the page follows the job, and reloads itself until it is done.
    html = client.get("/bill-runs").text
    assert "Queued: Bill 2026-11." in html and _count(ctx, BillRun) == 0
    job = html.split('class="job-row"', 1)[1].split("</tr>", 1)[0]
    assert "Bill 2026-11" in job and ">queued<" in job and "user:clerk" in job
    assert '<meta http-equiv="refresh" content="3">' in html
    # Asking again while it waits: refused, nothing more queued.
    r = client.post("/bill-runs", data={"csrf_token": csrf, "period": "2026-11"})
    assert "flash-error" in r.text and "Bill 2026-11 is already queued or running" in r.text
    assert len(_run_jobs(ctx)) == 1

    html = client.get("/bill-runs").text
    with ctx.db.read() as s:
        run = s.scalars(select(BillRun)).one()
        assert run.bills == 2 and run.status == "completed"
    job = html.split('class="job-row"', 1)[1].split("</tr>", 1)[0]
    assert ">succeeded<" in job and f"2 bills, {format_cny(run.total_micros)} in all" in job
    assert 'http-equiv="refresh"' not in html
    row = html.split('class="run-row"', 1)[1].split("</tr>", 1)[0]
    assert "2026-11" in row and format_cny(run.total_micros) in row and "completed" in row
    assert "2026-12-01 02:00 UTC" in row
    with ctx.db.read() as s:  # billed as the clerk who asked
        actor = s.scalar(select(AuditEntry.actor).where(AuditEntry.action == "bill-run.completed"))
    assert actor == "user:clerk"

    # Again: every account is billed already, so the new run bills nobody.
    client.post("/bill-runs", data={"csrf_token": csrf, "period": "2026-11"})
    _run_jobs(ctx)
    job = client.get("/bill-runs").text.split('class="job-row"', 1)[1].split("</tr>", 1)[0]
    assert "nothing to bill: every account is billed already" in job
    assert _count(ctx, CustomerBill) == 2 and _count(ctx, BillRun) == 2


def test_a_run_is_validated_and_sent_from_its_row(
    client: TestClient, ctx: AppContext, world: World
):
    """A run's row counts its bills by state and offers the next release; a bill put on hold
    from its invoice page stays aside; the prepaid customer's bill is paid once sent."""
    mine, theirs = _two_shops(ctx, world)
    clerk = world.user(world.operator, Role.BILLING, "clerk")
    csrf = _as(client, clerk.username)
    client.post("/bill-runs", data={"csrf_token": csrf, "period": "2026-11"})
    _run_jobs(ctx)
    with ctx.db.read() as s:
        run = s.scalars(select(BillRun)).one()
        held = s.scalar(
            select(CustomerBill.id).where(CustomerBill.billing_account_id == theirs.account_id)
        )
    row = client.get("/bill-runs").text.split('class="run-row"', 1)[1].split("</tr>", 1)[0]
    assert ">new</span> 2<" in row and "Validate 2 new" in row and "Send" not in row

    page = client.get(f"/invoices/{held}").text
    assert 'id="move-hold"' in page and 'id="move-release"' not in page
    r = client.post(f"/invoices/{held}/hold", data={"csrf_token": csrf, "reason": "device count"})
    assert "Invoice put on hold." in r.text and 'id="move-release"' in r.text
    r = client.post(f"/invoices/{held}/hold", data={"csrf_token": csrf})  # a page shown before
    assert "flash-error" in r.text and "nothing to hold" in r.text

    r = client.post(f"/bill-runs/{run.id}/validate", data={"csrf_token": csrf})
    assert "Queued: Validate the bills of 2026-11" in r.text
    row = r.text.split('class="run-row"', 1)[1].split("</tr>", 1)[0]
    assert "releasing…" in row and "<button" not in row  # one release of a run at a time
    _run_jobs(ctx)
    r = client.get("/bill-runs")
    assert "1 bill validated" in r.text.split('class="job-row"', 1)[1].split("</tr>", 1)[0]
    row = r.text.split('class="run-row"', 1)[1].split("</tr>", 1)[0]
    assert "Send 1 validated" in row and "Validate" not in row and ">onHold</span> 1<" in row
    client.post(f"/bill-runs/{run.id}/send", data={"csrf_token": csrf})
    _run_jobs(ctx)
    assert "1 bill sent" in client.get("/bill-runs").text
    r = client.post(f"/bill-runs/{run.id}/send", data={"csrf_token": csrf})
    assert "flash-error" in r.text and "nothing to send" in r.text
    r = client.post(f"/bill-runs/{run.id}/pay", data={"csrf_token": csrf})
    assert "flash-error" in r.text and "not a release" in r.text
    assert _run_jobs(ctx) == []  # the refusals queued nothing
    with ctx.db.read() as s:
        states = dict(s.execute(select(CustomerBill.billing_account_id, CustomerBill.state)).all())
    assert states == {mine.account_id: "settled", theirs.account_id: "onHold"}

    r = client.post(f"/invoices/{held}/release", data={"csrf_token": csrf})
    assert "Invoice released: new again." in r.text and 'id="move-hold"' in r.text


def test_bill_runs_are_for_operator_staff(client: TestClient, ctx: AppContext, world: World):
    mine, _ = _two_shops(ctx, world)
    with ctx.db.write() as w:
        billing.run_bills(
            w,
            world.system,
            "2026-11",
            at=DEC_1,
            settings=billing.RunSettings(600, "SAT", 30, "Asia/Shanghai"),
        )
    world.user(world.operator, Role.COMPLIANCE, "auditor")
    world.user(mine.tenant, Role.CUSTOMER_ADMIN, "cust")

    _as(client, "auditor")  # may see runs, may not start one
    html = client.get("/bill-runs").text
    assert "run-row" in html and 'id="run-form"' not in html
    csrf = _as(client, "cust")
    assert 'href="/bill-runs"' not in client.get("/").text
    assert client.get("/bill-runs").status_code == 403
    r = client.post("/bill-runs", data={"csrf_token": csrf, "period": "2026-11"})
    assert r.status_code == 403 and _count(ctx, BillRun) == 1
    with ctx.db.read() as s:
        run_id = s.scalars(select(BillRun.id)).one()
    r = client.post(f"/bill-runs/{run_id}/validate", data={"csrf_token": csrf})
    assert r.status_code == 403
    with ctx.db.read() as s:
        assert set(s.scalars(select(CustomerBill.state))) == {"new"}


# ---- billing accounts, dry run and top-ups ----------------------------------------------------


def test_accounts_dry_run_and_top_ups(client: TestClient, ctx: AppContext, world: World):
    mine, theirs = _two_shops(ctx, world)
    clerk = world.user(world.operator, Role.BILLING, "clerk")
    csrf = _as(client, clerk.username)

    listing = client.get("/billing-accounts").text
    assert 'href="/billing-accounts"' in listing
    assert "Prepaid Co" in listing and "Postpaid Co" in listing
    prepaid_only = client.get("/billing-accounts?mode=prepaid").text
    assert "Prepaid Co" in prepaid_only and "Postpaid Co" not in prepaid_only

    # The dry run shows lines, subtotal, VAT and total, and writes nothing.
    with ctx.db.read() as s:
        expected = billing.dry_run(
            s,
            mine.account_id,
            "2026-11",
            at=ctx.clock.now(),
            tax_rate_bp=ctx.settings.tax_rate_bp,
            tz="Asia/Shanghai",
        )
        rated = s.scalar(select(func.count()).where(UsageRecord.state == "rated"))
    assert expected is not None and expected.total_micros > 0
    html = client.get(f"/billing-accounts/{mine.account_id}?period=2026-11").text
    assert "Dry run for 2026-11" in html
    assert html.count('class="line-row"') == len(expected.lines)
    for ln in expected.lines:
        assert ln.description in html
    assert f'id="dry-run-subtotal">{format_cny(expected.subtotal_micros)}<' in html
    assert f'id="dry-run-vat">{format_cny(expected.tax_micros)}<' in html
    assert f'id="dry-run-total">{format_cny(expected.total_micros)}<' in html
    assert _count(ctx, CustomerBill) == 0 and _count(ctx, BillRun) == 0
    with ctx.db.read() as s:
        assert s.scalar(select(func.count()).where(UsageRecord.state == "rated")) == rated

    # A malformed month is an error; the page falls back to the current month.
    html = client.get(f"/billing-accounts/{mine.account_id}?period=2026-13").text
    assert "flash-error" in html and "Dry run for 2026-12" in html
    # So is a month that has not begun (a mistyped year): not "nothing to bill".
    html = client.get(f"/billing-accounts/{mine.account_id}?period=9998-12").text
    assert "period 9998-12 has not begun" in html and "Dry run for 2026-12" in html

    # Top-ups: bad input changes nothing.
    before = _balance(ctx, mine.account_id)
    url = f"/billing-accounts/{mine.account_id}/top-ups"
    assert 'id="top-up-form"' in html
    for data, message in (
        ({"amount": "lots", "reference": "T-1"}, "amount must be a number of yuan"),
        ({"amount": "-5", "reference": "T-1"}, "amount must be a positive number"),
        ({"amount": "1.234", "reference": "T-1"}, "more than two decimals"),
        ({"amount": "Infinity", "reference": "T-1"}, "amount must be a positive number"),
        ({"amount": "100.00", "reference": "  "}, "reference must not be empty"),
    ):
        r = client.post(url, data={"csrf_token": csrf, **data})
        assert "flash-error" in r.text and message in r.text, data
    assert client.post(url, data={"amount": "100", "reference": "T-1"}).status_code == 403
    assert _balance(ctx, mine.account_id) == before and _count(ctx, Payment) == 0

    # A top-up, then the same again: recorded once.
    r = client.post(url, data={"csrf_token": csrf, "amount": "100.00", "reference": "CMB-7"})
    assert "Top-up of ¥100.00 recorded." in r.text and "CMB-7" in r.text
    r = client.post(url, data={"csrf_token": csrf, "amount": "100.00", "reference": "CMB-7"})
    assert "was recorded already" in r.text
    assert _balance(ctx, mine.account_id) == before + 100_000_000 and _count(ctx, Payment) == 1
    r = client.post(url, data={"csrf_token": csrf, "amount": "90.00", "reference": "CMB-7"})
    assert "flash-error" in r.text and "already records another payment" in r.text
    assert _balance(ctx, mine.account_id) == before + 100_000_000

    # A postpaid account has no top-up form and refuses one.
    page = client.get(f"/billing-accounts/{theirs.account_id}").text
    assert 'id="top-up-form"' not in page
    r = client.post(
        f"/billing-accounts/{theirs.account_id}/top-ups",
        data={"csrf_token": csrf, "amount": "10", "reference": "X-1"},
    )
    assert "only a prepaid account takes top-ups" in r.text and _count(ctx, Payment) == 1

    # Once billed, the dry run says so and links the bill.
    with ctx.db.write() as w:
        billing.run_bills(
            w,
            world.system,
            "2026-11",
            at=DEC_1,
            settings=billing.RunSettings(600, "SAT", 30, "Asia/Shanghai"),
        )
    html = client.get(f"/billing-accounts/{mine.account_id}?period=2026-11").text
    assert "2026-11 is billed already" in html and 'href="/invoices/' in html


def test_customers_see_only_their_own_accounts(client: TestClient, ctx: AppContext, world: World):
    mine, theirs = _two_shops(ctx, world)
    world.user(mine.tenant, Role.CUSTOMER_ADMIN, "cust")
    csrf = _as(client, "cust")
    assert 'href="/billing-accounts"' in client.get("/").text
    listing = client.get("/billing-accounts").text
    assert "Prepaid Co" in listing and "Postpaid Co" not in listing

    own = client.get(f"/billing-accounts/{mine.account_id}?period=2026-11")
    assert own.status_code == 200
    assert "¥" in own.text and 'id="dry-run-total"' in own.text
    assert 'id="top-up-form"' not in own.text  # top-ups are the operator's
    other = client.get(f"/billing-accounts/{theirs.account_id}?period=2026-11")
    assert other.status_code == 404 and "Postpaid Co" not in other.text
    assert client.get("/billing-accounts/not-an-id").status_code == 404

    before = _balance(ctx, mine.account_id)
    r = client.post(
        f"/billing-accounts/{mine.account_id}/top-ups",
        data={"csrf_token": csrf, "amount": "100", "reference": "SELF-1"},
    )
    assert r.status_code == 403
    assert _balance(ctx, mine.account_id) == before and _count(ctx, Payment) == 0


def test_usage_page_refuses_a_month_that_is_not_one(
    client: TestClient, ctx: AppContext, world: World
):
    """Arabic-Indic digits, month 13 and the year 0 were shown as an empty month of that name;
    like the billing account's dry run, the page says so and shows the current month."""
    ctx.clock.set(DEC_1)
    _as(client, "admin")
    for period in ("٢٠٢٦-١١", "²⁰²⁶-¹¹", "2026-13", "0000-01", "9999-99"):
        r = client.get("/usage", params={"period": period})
        assert r.status_code == 200
        assert "flash-error" in r.text and period not in r.text, period
        assert "2026-12" in r.text
    assert "flash-error" not in client.get("/usage?period=2026-11").text


def test_a_run_still_billing_offers_no_release(client: TestClient, ctx: AppContext, world: World):
    """A run stopped part way (``bill_run_chunks``) is shown billing, without release buttons,
    and a release asked for anyway is refused with the reason."""
    _two_shops(ctx, world)
    with ctx.db.write() as w:
        run = billing.run_bills(
            w,
            world.system,
            "2026-11",
            at=DEC_1,
            settings=billing.RunSettings(600, "SAT", 30, "Asia/Shanghai"),
        )
        run.status = "running"  # as a run whose runner died between chunks is left
        run_id = run.id
    world.user(world.operator, Role.BILLING, "clerk9")
    csrf = _as(client, "clerk9")
    row = client.get("/bill-runs").text.split('class="run-row"', 1)[1].split("</tr>", 1)[0]
    assert "billing…" in row and "<button" not in row and ">new</span> 2<" in row
    r = client.post(f"/bill-runs/{run_id}/validate", data={"csrf_token": csrf})
    assert "flash-error" in r.text and "still billing its accounts" in r.text
    assert _run_jobs(ctx) == []
