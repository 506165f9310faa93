"""The Billing accounts page in a real browser: a dry run for a month, then a top-up.

Headless Chromium via Playwright against uvicorn on a free port (the ``live_server`` fixture of
the console's browser test). A screenshot of the account page is written to /tmp/satiot-screens.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from satiot.api.context import AppContext
from satiot.bss import billing
from satiot.bss.models import CustomerBill
from satiot.bss.money import format_cny
from tests.bss.billing_world import offering, price, rate_all, shop, uplink
from tests.factories import World
from tests.web.browser import SCREENS, admin_console, live_server, screenshot
from tests.web.test_billing_console_pages import _balance, _run_jobs, _sent_bill, _two_shops

__all__ = ["live_server"]  # the fixture, imported for this module's tests

pytestmark = pytest.mark.browser


def test_dry_run_and_top_up_through_the_console(
    live_server: str, ctx: AppContext, world: World
) -> None:
    from playwright.sync_api import expect

    mine, _ = _two_shops(ctx, world)
    with ctx.db.read() as s:
        draft = billing.dry_run(
            s,
            mine.account_id,
            "2026-11",
            at=ctx.clock.now(),
            tax_rate_bp=ctx.settings.tax_rate_bp,
            tz="Asia/Shanghai",
        )
    assert draft is not None
    before = _balance(ctx, mine.account_id)
    with admin_console(live_server) as page:
        page.click("nav >> text=Billing accounts")
        expect(page.locator("h1")).to_have_text("Billing accounts")
        page.locator("tr.account-row", has_text="Prepaid Co").locator("a").click()
        expect(page.locator("#account-balance")).to_have_text(format_cny(before))

        # The dry run for November: its lines and total, and nothing written.
        page.fill("#dry-period", "2026-11")
        page.click("#dry-run-form button[type=submit]")
        expect(page.locator("#dry-run h2")).to_have_text("Dry run for 2026-11")
        expect(page.locator("#dry-run-lines tr.line-row")).to_have_count(len(draft.lines))
        expect(page.locator("#dry-run-vat")).to_have_text(format_cny(draft.tax_micros))
        expect(page.locator("#dry-run-total")).to_have_text(format_cny(draft.total_micros))

        # A top-up; sent twice with the same reference, it is recorded once.
        form = page.locator("#top-up-form")
        form.locator("input[name=amount]").fill("250.50")
        form.locator("input[name=reference]").fill("ALIPAY-20261201-1")
        form.locator("button[type=submit]").click()
        expect(page.locator(".flash-success")).to_have_text("Top-up of ¥250.50 recorded.")
        after = format_cny(before + 250_500_000)
        expect(page.locator("#account-balance")).to_have_text(after)
        expect(page.locator("#top-ups-table tr.top-up-row")).to_have_count(1)
        form = page.locator("#top-up-form")
        form.locator("input[name=amount]").fill("250.50")
        form.locator("input[name=reference]").fill("ALIPAY-20261201-1")
        form.locator("button[type=submit]").click()
        expect(page.locator(".flash-info")).to_contain_text("was recorded already")
        expect(page.locator("#account-balance")).to_have_text(after)
        expect(page.locator("#top-ups-table tr.top-up-row")).to_have_count(1)
        expect(page.locator("#dry-run h2")).to_have_text("Dry run for 2026-11")

        # The balance's history: the top-up on top of November's usage, newest first.
        latest = page.locator("#balance-latest tr.balance-row")
        expect(latest).to_have_count(2)
        expect(latest.first).to_contain_text("ALIPAY-20261201-1")
        expect(latest.nth(1)).to_contain_text("usage rated")
        # A low-balance notice, set from under the balance.
        page.fill("#low-balance-amount", "300")
        page.click("#low-balance-form button[type=submit]")
        expect(page.locator(".flash-success")).to_have_text("Low-balance notice below ¥300.00.")
        expect(page.locator("#account-low-balance")).to_contain_text("below ¥300.00")
        screenshot(page, SCREENS / "billing-account.png", full_page=True)
        page.click("#balance-all")
        expect(page.locator("#balance-history tr.balance-row")).to_have_count(2)
        expect(page.locator("#balance-history tr.balance-row").first).to_contain_text(after)

    assert _balance(ctx, mine.account_id) == before + 250_500_000


def test_an_invoices_usage_by_device_pages_and_downloads(
    live_server: str, ctx: AppContext, world: World
) -> None:
    from playwright.sync_api import expect

    owner = shop(world)
    plan = offering(ctx, "Metered", [price("recurring", 1_000_000), price("per-message", 10_000)])
    subs = [owner.device(plan, datetime(2026, 10, 1, tzinfo=UTC)) for _ in range(55)]
    for n, sub in enumerate(subs):
        uplink(ctx, sub, 20, datetime(2026, 11, 5, 0, n, tzinfo=UTC))
    rate_all(ctx)
    ctx.clock.set(datetime(2026, 12, 1, 2, tzinfo=UTC))
    with ctx.db.write() as w:
        run = billing.run_bills(
            w,
            world.system,
            "2026-11",
            at=ctx.clock.now(),
            settings=billing.RunSettings(600, "SAT", 30, "Asia/Shanghai"),
        )
        number = w.scalar(select(CustomerBill.number).where(CustomerBill.bill_run_id == run.id))
    problems: list[str] = []
    with admin_console(live_server, problems) as page:
        page.click("nav >> text=Invoices")
        page.locator("a", has_text=str(number)).first.click()
        rows = page.locator("#devices-table tbody tr")
        expect(rows).to_have_count(50)
        expect(rows.first).to_contain_text(subs[0].dev_eui)
        # 30 days of service, the ¥1 monthly fee, one ¥0.01 message: ¥1.01 in all
        expect(rows.first.locator("td").nth(3)).to_have_text("30")
        expect(rows.first.locator("td").nth(4)).to_have_text("¥1.000000")
        expect(rows.first.locator("td").last).to_have_text("¥1.010000")
        wrap = page.locator("#devices .table-wrap")
        fits = wrap.evaluate("e => e.scrollWidth <= e.clientWidth")
        assert fits, "the devices table fits its card at 1360 px"
        screenshot(page, SCREENS / "invoice-devices.png", full_page=True)
        with page.expect_download() as download:
            page.click("#devices >> text=Download CSV")
        saved = download.value
        assert saved.suggested_filename == f"satiot-usage-{number}.csv"
        lines = Path(saved.path()).read_bytes().decode("utf-8-sig").splitlines()
        assert len(lines) == 1 + 55 and lines[1].split(",")[2] == subs[0].dev_eui
        page.click("#devices-next")
        expect(rows).to_have_count(5)
        expect(rows.last).to_contain_text(subs[54].dev_eui)
        expect(page.locator("#devices-next")).to_have_count(0)
    assert problems == []


def test_an_invoice_is_adjusted_before_it_is_validated_and_credited_once_sent(
    live_server: str, ctx: AppContext, world: World
) -> None:
    from playwright.sync_api import expect

    owner = shop(world)
    plan = offering(ctx, "Monthly", [price("recurring", 100_000_000)])
    owner.device(plan, datetime(2026, 10, 1, tzinfo=UTC))
    ctx.clock.set(datetime(2026, 12, 1, 2, tzinfo=UTC))
    with ctx.db.write() as w:
        billing.run_bills(
            w,
            world.system,
            "2026-11",
            at=ctx.clock.now(),
            settings=billing.RunSettings(600, "SAT", 30, "Asia/Shanghai"),
        )
        number = w.scalar(select(CustomerBill.number))
    problems: list[str] = []
    with admin_console(live_server, problems) as page:
        page.click("nav >> text=Invoices")
        page.locator("a", has_text=str(number)).first.click()
        expect(page.locator("#invoice-total")).to_have_text("¥106.00")
        form = page.locator("#adjustment-form")
        box = form.bounding_box()
        assert box is not None and box["height"] < 60, "the form is one line at 1360 px"
        form.locator("input[name=amount]").fill("-20.00")
        form.locator("input[name=reason]").fill("Credit for the outage of 12 November")
        form.locator("button[type=submit]").click()
        expect(page.locator(".flash-success")).to_contain_text("Adjustment added")
        line = page.locator("#invoice-lines tr.line-row", has_text="outage of 12 November")
        expect(line).to_contain_text("-¥20.00")
        expect(page.locator("#invoice-total")).to_have_text("¥84.80")
        screenshot(page, SCREENS / "invoice-adjusted.png", full_page=True)
        page.click("#invoice button:has-text('Validate')")
        expect(page.locator("#adjustment-form")).to_have_count(0)
        expect(page.locator("#invoice-total")).to_have_text("¥84.80")
        expect(page.locator("#credit-note-form")).to_have_count(0)  # not sent yet
        page.click("#invoice button:has-text('Send')")
        credit = page.locator("#credit-note-form")
        box = credit.bounding_box()
        assert box is not None and box["height"] < 60, "the form is one line at 1360 px"
        credit.locator("input[name=amount]").fill("10.00")
        credit.locator("input[name=reason]").fill("Goodwill for the late activation")
        credit.locator("button[type=submit]").click()
        expect(page.locator(".flash-success")).to_contain_text(
            "Credit note SATCN2026-00000001 issued for ¥10.60."
        )
        expect(page.locator("#invoice-total")).to_have_text("¥84.80")  # the invoice stays
        expect(page.locator("#invoice-due")).to_have_text("¥74.20")
        note = page.locator("#credit-notes-table tbody tr")
        expect(note).to_contain_text("Goodwill for the late activation")
        href = note.locator("a", has_text="PDF").get_attribute("href")
        assert href is not None
        pdf = page.request.get(live_server + href)
        assert pdf.ok and pdf.headers["content-type"] == "application/pdf"
        screenshot(page, SCREENS / "invoice-credited.png", full_page=True)
    assert problems == []


def test_a_run_is_released_from_the_bill_runs_page(
    live_server: str, ctx: AppContext, world: World
) -> None:
    """Run a month, hold one bill from its invoice page, then validate and send the rest of
    the run with its row's buttons; the table of runs fits its card at 1360 px."""
    from playwright.sync_api import expect

    mine, theirs = _two_shops(ctx, world)
    problems: list[str] = []
    with admin_console(live_server, problems) as page:
        page.click("nav >> text=Bill runs")
        page.fill("#run-period", "2026-11")
        page.click("#run-form button[type=submit]")
        expect(page.locator(".flash-success")).to_contain_text("Queued: Bill 2026-11.")
        expect(page.locator("#jobs-table tr.job-row .badge")).to_have_text("queued")
        assert len(_run_jobs(ctx)) == 1  # satiot up's runner, here in the test's thread
        page.reload()
        job = page.locator("#jobs-table tr.job-row").first
        expect(job.locator(".badge")).to_have_text("succeeded")
        expect(job.locator(".job-outcome")).to_contain_text("2 bills")
        row = page.locator("#bill-runs-table tr.run-row").first
        expect(row.locator(".run-states")).to_have_text("new 2")
        fits = page.locator("#bill-runs .table-wrap").evaluate(
            "e => e.scrollWidth <= e.clientWidth"
        )
        assert fits, "the runs table fits its card at 1360 px"

        # One bill is held from its invoice page, with a reason, and stays aside.
        page.locator(".run-states a", has_text="new").click()
        page.locator("a", has_text="SAT2026-00000002").first.click()
        hold = page.locator("#move-hold")
        hold.locator("input[name=reason]").fill("check the device count")
        hold.locator("button").click()
        expect(page.locator(".flash-success")).to_have_text("Invoice put on hold.")
        expect(page.locator("#invoice .badge").first).to_have_text("onHold")

        page.click("nav >> text=Bill runs")
        row = page.locator("#bill-runs-table tr.run-row").first
        row.locator("button", has_text="Validate 1 new").click()
        expect(page.locator(".flash-success")).to_contain_text("Queued: Validate the bills")
        expect(page.locator("#bill-runs-table tr.run-row").first).to_contain_text("releasing…")
        _run_jobs(ctx)
        page.reload()
        expect(page.locator("tr.job-row .job-outcome").first).to_have_text("1 bill validated")
        row = page.locator("#bill-runs-table tr.run-row").first
        expect(row.locator(".run-states")).to_have_text("onHold 1 · validated 1")
        row.locator("button", has_text="Send 1 validated").click()
        _run_jobs(ctx)
        page.reload()
        expect(page.locator("tr.job-row .job-outcome").first).to_have_text("1 bill sent")
        row = page.locator("#bill-runs-table tr.run-row").first
        expect(row.locator(".run-release button")).to_have_count(0)
        screenshot(page, SCREENS / "bill-runs-released.png", full_page=True)
    assert problems == []
    with ctx.db.read() as s:
        bills = {b.number: b for b in s.scalars(select(CustomerBill))}
    held, released = bills.pop("SAT2026-00000002"), bills.pop("SAT2026-00000001")
    assert held.state == "onHold"
    # the prepaid customer's bill was paid from its balance once sent
    assert released.state == (
        "settled" if released.billing_account_id == mine.account_id else "sent"
    )
    assert {held.billing_account_id, released.billing_account_id} == {
        mine.account_id,
        theirs.account_id,
    }


def test_a_bank_statement_is_imported_from_the_invoices_page(
    live_server: str, ctx: AppContext, world: World, tmp_path: Path
) -> None:
    """From the Invoices page to the import form: a bad statement lists its bad lines; the
    corrected one settles the bill."""
    from playwright.sync_api import expect

    _mine, theirs = _two_shops(ctx, world)
    bill_id, number, total = _sent_bill(ctx, world, theirs)
    bad, good = tmp_path / "bad.csv", tmp_path / "good.csv"
    bad.write_text(f"bill,amount,reference\n{number},1.001,BANK-1\nSAT2026-99,1.00,BANK-2\n")
    good.write_text(f"bill,amount,reference\n{number},{total / 1e6:.2f},BANK-1\n")
    problems: list[str] = []
    with admin_console(live_server, problems) as page:
        page.click("nav >> text=Invoices")
        page.click("#payments-import")
        expect(page.locator("h1")).to_have_text("Import payments")
        page.set_input_files("#payment-upload input[type=file]", str(bad))
        page.click("#payment-upload button[type=submit]")
        expect(page.locator("#import-errors tr.import-error")).to_have_count(2)
        expect(page.locator(".flash-error")).to_contain_text("nothing was recorded")
        page.set_input_files("#payment-upload input[type=file]", str(good))
        page.click("#payment-upload button[type=submit]")
        expect(page.locator(".flash-success")).to_contain_text(
            f"1 payment recorded ({format_cny(total)}); 1 bill now settled."
        )
        screenshot(page, SCREENS / "payments-imported.png", full_page=True)
    # the refused file's page answers 422, which the browser logs; nothing else went wrong
    assert [p for p in problems if "status of 422" not in p] == [] and len(problems) == 1
    with ctx.db.read() as s:
        assert s.get(CustomerBill, bill_id).state == "settled"


def test_an_accounts_statement_from_its_page(
    live_server: str, ctx: AppContext, world: World
) -> None:
    """From a billing account's page to its statement: the table fits at 1360 px, a narrower
    window of days opens on what was owed before it."""
    from playwright.sync_api import expect

    _mine, theirs = _two_shops(ctx, world)
    _bill_id, _number, total = _sent_bill(ctx, world, theirs)
    problems: list[str] = []
    with admin_console(live_server, problems) as page:
        page.goto(f"{live_server}/billing-accounts/{theirs.account_id}")
        page.click("#account-statement")
        expect(page.locator("#statement-table tr.statement-row")).to_have_count(1)
        expect(page.locator("#statement-closing")).to_have_text(format_cny(total))
        fits = page.locator("#statement .table-wrap").evaluate(
            "e => e.scrollWidth <= e.clientWidth"
        )
        assert fits, "the statement fits its card at 1360 px"
        screenshot(page, SCREENS / "account-statement.png", full_page=True)
        page.fill("#st-from", "2026-12-02")
        page.fill("#st-to", "2026-12-31")
        page.click("#statement-form button[type=submit]")
        expect(page.locator("#statement-opening")).to_have_text(format_cny(total))
        expect(page.locator("#statement-table tr.statement-row")).to_have_count(0)
    assert problems == []
