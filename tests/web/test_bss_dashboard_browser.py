"""The dashboard's Business row in a real browser: what waits is highlighted, and its link
leads to the work (headless Chromium against uvicorn, as the other console browser tests)."""

from __future__ import annotations

import pytest

from satiot.api.context import AppContext
from tests.factories import World
from tests.web.browser import SCREENS, admin_console, live_server, screenshot
from tests.web.test_bss_dashboard import _business

__all__ = ["live_server"]  # the fixture, imported for this module's tests

pytestmark = pytest.mark.browser


def test_business_row_leads_to_the_customer_waiting_for_review(
    live_server: str, ctx: AppContext, world: World
) -> None:
    from playwright.sync_api import expect

    _business(world, ctx)
    with admin_console(live_server) as page:
        row = page.locator("#business-figures")
        expect(row.locator(".figure")).to_have_count(6)  # with Bills to release (admin)
        waiting = row.locator(".figure", has_text="Customers verified")
        expect(waiting).to_have_class("figure card figure-alert")
        shadow = waiting.evaluate("el => getComputedStyle(el).boxShadow")
        assert shadow not in ("", "none")  # the highlight is drawn, not only named
        calm = row.locator(".figure", has_text="Contracts in force")
        expect(calm).to_have_class("figure card")
        released = row.locator(".figure", has_text="Bills to release")  # its bill was sent
        expect(released).to_have_class("figure card")
        SCREENS.mkdir(parents=True, exist_ok=True)
        screenshot(page, SCREENS / "dashboard-business.png", full_page=True)

        waiting.get_by_role("link", name="review").click()
        expect(page.locator("h1")).to_have_text("Customers")
        expect(page.locator("body")).to_contain_text("Waiting Co")
        assert "status=manual-review" in page.url
