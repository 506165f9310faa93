"""The Usage page's counters in a real browser (headless Chromium against uvicorn): each
meter stays on one line with its percentage, in the narrow quota column too."""

from __future__ import annotations

import pytest

from satiot.api.context import AppContext
from tests.bss.billing_world import pooled_usage
from tests.factories import World
from tests.web.browser import SCREENS, admin_console, live_server, screenshot

__all__ = ["live_server"]  # the fixture, imported for this module's tests

pytestmark = pytest.mark.browser

#: Whether a cell's meter and the percent sign after it share a line: the boxes of that
#: stretch all overlap vertically (a meter sits higher than the text beside it, so their tops
#: differ even on one line).
ONE_LINE = """cell => {
  const meter = cell.querySelector("meter");
  const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
  let node;
  while ((node = walker.nextNode()) && !(meter.compareDocumentPosition(node) &
         Node.DOCUMENT_POSITION_FOLLOWING && node.data.includes("%"))) {}
  const range = document.createRange();
  range.setStartBefore(meter);
  range.setEnd(node, node.data.indexOf("%") + 1);
  const boxes = [...range.getClientRects()].filter(r => r.width > 0);
  return Math.max(...boxes.map(r => r.top)) < Math.min(...boxes.map(r => r.bottom));
}"""


def test_each_meter_reads_on_one_line(live_server: str, ctx: AppContext, world: World) -> None:
    from playwright.sync_api import expect

    pooled_usage(ctx, world, 3, quota_messages=1_000)
    with admin_console(live_server) as page:
        page.set_viewport_size({"width": 1280, "height": 900})
        page.goto(f"{live_server}/usage?period=2026-11")
        meters = page.locator("#usage-counters td:has(meter)")
        expect(meters.first).to_be_visible()
        SCREENS.mkdir(parents=True, exist_ok=True)
        screenshot(page, SCREENS / "usage.png", full_page=True)
        # Three devices' quota meters and the pool's allowance meter.
        assert meters.count() == 4
        for i in range(meters.count()):
            cell = meters.nth(i)
            assert cell.evaluate(ONE_LINE), cell.inner_text()


def test_the_account_page_downloads_a_months_records(
    live_server: str, ctx: AppContext, world: World
) -> None:
    owner = pooled_usage(ctx, world, 3)
    with admin_console(live_server) as page:
        page.goto(f"{live_server}/billing-accounts/{owner.account_id}")
        form = page.locator("#usage-records-form")
        form.locator("#records-period").fill("2026-11")
        form.locator("#records-state").select_option("rated")
        with page.expect_download() as started:
            form.get_by_role("button", name="Download CSV").click()
        download = started.value
        assert download.suggested_filename == (
            f"satiot-usage-2026-11-account-{owner.account_id.hex[:8]}.csv"
        )
        lines = download.path().read_text(encoding="utf-8-sig").splitlines()
    assert lines[0].split(",")[:3] == ["used_at", "dev_eui", "direction"]
    assert len(lines) > 1 and {line.split(",")[6] for line in lines[1:]} == {"rated"}
