"""Suspending devices from a file in a real browser (headless Chromium against uvicorn): reached
from the Subscriptions page, a bad line shown in a table that fits the card, then the file
applied and the devices shown suspended."""

from __future__ import annotations

from pathlib import Path

import pytest

from satiot.api.context import AppContext
from tests.bss.order_world import shop, terminal
from tests.bss.test_activation import activate_one
from tests.factories import World
from tests.web.browser import SCREENS, admin_console, live_server, screenshot

__all__ = ["live_server"]  # the fixture, imported for this module's tests

pytestmark = pytest.mark.browser


def test_a_winters_devices_are_suspended_from_the_page(
    live_server: str, ctx: AppContext, world: World, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    s = shop(ctx, world)
    subs = [activate_one(s, terminal()) for _ in range(2)]
    lines = "".join(f"{x.dev_eui},suspend,winter: fields under snow\n" for x in subs)
    bad = tmp_path / "winter.csv"
    bad.write_text("device,action,reason\n" + lines + "0011223344556677,suspend,unknown\n")
    with admin_console(live_server) as page:
        page.set_viewport_size({"width": 1280, "height": 900})
        page.goto(f"{live_server}/subscriptions")
        page.click("#status-import-link")
        page.set_input_files("#status-upload input[type=file]", str(bad))
        page.click("#status-upload button[type=submit]")
        rows = page.locator("#status-errors tr.status-error")
        expect(rows).to_have_count(1)
        assert rows.nth(0).inner_text().startswith("4")
        assert "no live subscription" in rows.nth(0).inner_text()
        wrap = page.locator("#status-import .table-wrap")
        overflow = wrap.evaluate("el => el.scrollWidth - el.clientWidth")
        assert overflow <= 0, f"the table is {overflow} px wider than its card"
        SCREENS.mkdir(parents=True, exist_ok=True)
        screenshot(page, SCREENS / "status-import.png", full_page=True)

        good = tmp_path / "fixed.csv"
        good.write_text("device,action,reason\n" + lines)
        page.set_input_files("#status-upload input[type=file]", str(good))
        page.click("#status-upload button[type=submit]")
        expect(page.locator(".flash-success")).to_contain_text("2 devices suspended")
        page.goto(f"{live_server}/subscriptions?status=suspended")
        for sub in subs:
            expect(page.locator("#subscriptions")).to_contain_text(sub.dev_eui)


def test_a_long_file_is_queued_and_its_job_followed_on_the_page(
    live_server: str, ctx: AppContext, world: World, tmp_path: Path, monkeypatch
) -> None:
    from playwright.sync_api import expect

    from satiot.bss import status_import
    from satiot.core import jobs
    from satiot.web.views import status_import as view

    monkeypatch.setattr(view, "MAX_ROWS", 2)  # "long": more than two lines
    monkeypatch.setattr(status_import, "MAX_ROWS", 2)
    s = shop(ctx, world)
    subs = [activate_one(s, terminal()) for _ in range(3)]
    long = tmp_path / "fleet.csv"
    long.write_text(
        "device,action,reason\n"
        + "".join(f"{x.dev_eui},suspend,winter: fields under snow\n" for x in subs)
    )
    with admin_console(live_server) as page:
        page.set_viewport_size({"width": 1280, "height": 900})
        page.goto(f"{live_server}/subscriptions/status-import")
        page.set_input_files("#status-upload input[type=file]", str(long))
        page.click("#status-upload button[type=submit]")
        expect(page.locator(".flash-success")).to_contain_text("File checked: 3 lines queued")
        row = page.locator("#status-jobs tr.job-row")
        expect(row).to_have_count(1)
        expect(row).to_contain_text("Suspend/resume 3 devices from a file")
        expect(row.locator(".badge")).to_have_text("queued")
        jobs.run_pending(ctx.db, ctx.clock, ctx.settings)
        page.reload()  # the page also reloads itself every 3 s while the job waits
        expect(row.locator(".badge")).to_have_text("succeeded")
        expect(row.locator(".job-progress")).to_contain_text("3 / 3")
        expect(row.locator(".job-outcome")).to_have_text("3 suspended, 0 resumed, 0 already so")
        wrap = page.locator("#status-jobs .table-wrap")
        overflow = wrap.evaluate("el => el.scrollWidth - el.clientWidth")
        assert overflow <= 0, f"the jobs table is {overflow} px wider than its card"
        SCREENS.mkdir(parents=True, exist_ok=True)
        screenshot(page, SCREENS / "status-import-long-file.png", full_page=True)
